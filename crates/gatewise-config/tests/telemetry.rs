//! `[telemetry.otlp]`: OpenTelemetry trace export.

mod support;

use std::time::Duration;

use gatewise_config::model::{OtlpHeaderValue, SecretRef};
use support::{BASE, errors};

fn with(lines: &str) -> String {
    format!("{BASE}\n[telemetry.otlp]\n{lines}\n")
}

#[test]
fn defaults_and_the_traces_path() {
    let c = support::ok(&with("endpoint = \"http://127.0.0.1:4318\""));
    assert_eq!(c.warnings, []);
    let o = c.config.static_config.telemetry.otlp.unwrap();
    assert_eq!(o.traces_url, "http://127.0.0.1:4318/v1/traces");
    assert_eq!(o.timeout, Duration::from_secs(10));
    assert_eq!(o.service_name, "gatewise");
    assert_eq!(o.sample_ratio, 1.0);
    assert_eq!(o.queue, 2048);
    assert_eq!(o.headers, []);
    for (endpoint, url) in [
        (
            "https://otlp.example.com/",
            "https://otlp.example.com/v1/traces",
        ),
        (
            "https://otlp.example.com/tenant/a",
            "https://otlp.example.com/tenant/a/v1/traces",
        ),
        (
            "https://otlp.example.com/v1/traces",
            "https://otlp.example.com/v1/traces",
        ),
    ] {
        let c = support::ok(&with(&format!("endpoint = \"{endpoint}\"")));
        assert_eq!(
            c.config.static_config.telemetry.otlp.unwrap().traces_url,
            url
        );
    }
    // No section, no export.
    assert_eq!(support::ok(BASE).config.static_config.telemetry.otlp, None);
}

#[test]
fn every_key_is_read() {
    let c = support::ok(&with(
        "endpoint = \"https://otlp.example.com\"\nheaders = { \"X-Tenant\" = \"acme\" }\n\
         headers_env = { Authorization = \"OTLP_AUTH\" }\ntimeout = \"2s\"\n\
         service_name = \"edge-gw\"\nsample_ratio = 0.25\nqueue = 100",
    ));
    let o = c.config.static_config.telemetry.otlp.unwrap();
    assert_eq!(
        o.headers,
        [
            ("X-Tenant".into(), OtlpHeaderValue::Literal("acme".into())),
            (
                "Authorization".into(),
                OtlpHeaderValue::Secret(SecretRef::Env("OTLP_AUTH".into()))
            ),
        ]
    );
    assert_eq!(o.timeout, Duration::from_secs(2));
    assert_eq!(o.service_name, "edge-gw");
    assert_eq!(o.sample_ratio, 0.25);
    assert_eq!(o.queue, 100);
    // An integer ratio is a ratio too.
    let c = support::ok(&with(
        "endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0",
    ));
    assert_eq!(
        c.config.static_config.telemetry.otlp.unwrap().sample_ratio,
        0.0
    );
}

#[test]
fn mistakes_are_all_named_with_their_paths() {
    let errs = errors(&with(
        "endpoint = \"ftp://collector\"\ntimeout = \"0s\"\nservice_name = \" \"\n\
         sample_ratio = 1.5\nqueue = 0\nheaders_env = { \"X-Key\" = \"1BAD\" }",
    ));
    let expect = [
        "telemetry.otlp.endpoint: must be an http or https URL",
        "telemetry.otlp.timeout: must be greater than zero",
        "telemetry.otlp.service_name: must not be empty",
        "telemetry.otlp.sample_ratio: must be between 0 and 1",
        "telemetry.otlp.queue: must be between 1 and 1048576, not 0",
        "telemetry.otlp.headers_env.X-Key: invalid environment variable name",
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for e in expect {
        assert!(errs.iter().any(|x| x.contains(e)), "{e} not in {errs:#?}");
    }
    let errs = errors(&with("timeout = \"1s\""));
    assert!(
        errs[0].contains("telemetry.otlp.endpoint: missing required key"),
        "{errs:?}"
    );
    let errs = errors(&with("endpoint = \"http://u:p@127.0.0.1:4318\""));
    assert!(errs[0].contains("must not carry credentials"), "{errs:?}");
    let errs = errors(&with("endpoint = \"http://127.0.0.1:4318\"\nsampling = 1"));
    assert!(
        errs[0].contains("telemetry.otlp.sampling: unknown key"),
        "{errs:?}"
    );
    let errs = errors(&format!("{BASE}\n[telemetry.jaeger]\nendpoint = \"x\"\n"));
    assert!(
        errs[0].contains("telemetry.jaeger: unknown key"),
        "{errs:?}"
    );
}

#[test]
fn credentials_are_never_written_in_the_file() {
    for header in ["Authorization", "x-api-key", "X-Auth-Token", "Cookie"] {
        let errs = errors(&with(&format!(
            "endpoint = \"https://otlp.example.com\"\nheaders = {{ \"{header}\" = \"hunter2\" }}"
        )));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("headers_env"), "{errs:?}");
        assert!(!errs[0].contains("hunter2"), "{errs:?}");
    }
    let errs = errors(&with(
        "endpoint = \"https://otlp.example.com\"\nheaders = { \"X-Tenant\" = \"a\" }\n\
         headers_env = { \"x-tenant\" = \"TENANT\" }",
    ));
    assert!(errs[0].contains("is set twice"), "{errs:?}");
}

#[test]
fn plain_http_beyond_loopback_is_a_warning() {
    let w = support::warnings(&with("endpoint = \"http://collector.internal:4318\""));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("telemetry.otlp.endpoint: plain http"),
        "{w:?}"
    );
}

#[test]
fn a_change_needs_a_restart() {
    let a = support::ok(BASE).config.static_config;
    let b = support::ok(&with("endpoint = \"http://127.0.0.1:4318\""))
        .config
        .static_config;
    assert_eq!(gatewise_config::restart_required(&a, &b), ["telemetry"]);
}
