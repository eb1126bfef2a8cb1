//! Mints the gateway benchmark's key and tokens (see bench/README.md).
//!
//! ```text
//! cargo run --release -p gatewise-test-support --example mint -- OUTDIR N_ROTATION N_FRESH
//! ```
//!
//! Writes into OUTDIR:
//!
//! - `jwks.json`: the public key (RS256, kid `bench-rs256`);
//! - `token.txt`: one valid access token;
//! - `rotation.txt`: N_ROTATION distinct valid tokens, one per line;
//! - `fresh.txt`: N_FRESH distinct valid tokens, one per line, signed on
//!   every core;
//! - `unknown-kid.txt`: N_ROTATION tokens signed by another key, each with a
//!   random `kid` that is not in `jwks.json`;
//! - `mint.json`: what was minted (counts, kid, issuer, audience), so
//!   `bench/run.sh` can tell whether the files are complete.
//!
//! Every valid token is an RFC 9068 access token: header `typ: at+jwt`,
//! claims iss, aud, sub, client_id, scope `bench.read`, iat, exp (now + 10
//! years) and a unique jti. Progress goes to stderr.

#![allow(clippy::print_stderr)]

use gatewise_test_support::mint::TestKey;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

const ISSUER: &str = "https://bench.gatewise.test";
const AUDIENCE: &str = "https://api.bench.test";
const SCOPE: &str = "bench.read";
const KID: &str = "bench-rs256";
/// Tokens per message from a signing thread to the writer.
const BATCH: usize = 500;

fn usage() -> ! {
    eprintln!("usage: mint OUTDIR N_ROTATION N_FRESH");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, rotation, fresh] = args.as_slice() else {
        usage()
    };
    let out = PathBuf::from(out);
    let (Ok(n_rotation), Ok(n_fresh)) = (rotation.parse::<usize>(), fresh.parse::<usize>()) else {
        usage()
    };
    std::fs::create_dir_all(&out).expect("create OUTDIR");

    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let exp = now + 10 * 365 * 24 * 3600;
    // Distinguishes this minting's jti values from any earlier one.
    let run = hex(&random_bytes(4));

    eprintln!("mint: generating the RSA-2048 keys");
    let key = TestKey::new("RS256", KID);
    // Signs the unknown-kid tokens: a key the gateway does not know.
    let stranger = TestKey::new("RS256", "stranger");
    let claims = |jti: String| -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "bench-user",
            "client_id": "bench-client",
            "scope": SCOPE,
            "iat": now,
            "exp": exp,
            "jti": jti,
        })
    };
    let header = json!({"typ": "at+jwt"});

    write_file(
        &out.join("jwks.json"),
        &format!("{:#}\n", TestKey::jwks(&[&key])),
    );
    write_file(
        &out.join("token.txt"),
        &format!(
            "{}\n",
            key.sign(header.clone(), claims(format!("{run}-one")))
        ),
    );
    eprintln!("mint: jwks.json, token.txt");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    sign_many(&out.join("rotation.txt"), n_rotation, threads, |i| {
        key.sign(header.clone(), claims(format!("{run}-rot-{i:07}")))
    });
    sign_many(&out.join("fresh.txt"), n_fresh, threads, |i| {
        key.sign(header.clone(), claims(format!("{run}-fresh-{i:09}")))
    });
    sign_many(&out.join("unknown-kid.txt"), n_rotation, threads, |i| {
        let kid = format!("unknown-{}", hex(&random_bytes(8)));
        stranger.sign(
            json!({"typ": "at+jwt", "kid": kid}),
            claims(format!("{run}-unk-{i:07}")),
        )
    });

    let manifest = json!({
        "kid": KID,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "scope": SCOPE,
        "exp": exp,
        "rotation": n_rotation,
        "fresh": n_fresh,
        "unknown_kid": n_rotation,
    });
    write_file(&out.join("mint.json"), &format!("{manifest:#}\n"));
    eprintln!("mint: done, files in {}", out.display());
}

/// Signs `n` tokens with `threads` threads, token `i` made by `make(i)`, and
/// writes them one per line (in no particular order) to `path`.
fn sign_many(path: &Path, n: usize, threads: usize, make: impl Fn(usize) -> String + Sync) {
    let name = path
        .file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let tmp = path.with_extension("txt.partial");
    let mut file = BufWriter::new(File::create(&tmp).expect("create token file"));
    let (tx, rx) = mpsc::sync_channel::<Vec<String>>(threads * 4);
    let make = &make;
    std::thread::scope(|s| {
        for t in 0..threads {
            let tx = tx.clone();
            s.spawn(move || {
                // Thread t signs batches t, t + threads, t + 2 * threads, ...
                let mut start = t * BATCH;
                while start < n {
                    let end = (start + BATCH).min(n);
                    let batch: Vec<String> = (start..end).map(make).collect();
                    if tx.send(batch).is_err() {
                        return;
                    }
                    start += threads * BATCH;
                }
            });
        }
        drop(tx);
        let mut done = 0usize;
        let mut reported = 0usize;
        for batch in rx {
            for token in &batch {
                file.write_all(token.as_bytes()).expect("write token");
                file.write_all(b"\n").expect("write token");
            }
            done += batch.len();
            if done * 20 / n.max(1) > reported || done == n {
                reported = done * 20 / n.max(1);
                eprintln!("mint: {name}: {done}/{n}");
            }
        }
    });
    file.flush().expect("flush token file");
    drop(file);
    std::fs::rename(&tmp, path).expect("rename token file");
    if n == 0 {
        eprintln!("mint: {name}: 0 tokens");
    }
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("random bytes");
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
