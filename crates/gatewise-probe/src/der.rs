//! Just enough DER to read the issuer and subject names of an X.509
//! certificate (RFC 5280 §4.1) that rustls refused: rustls says *why* it
//! refused (unknown issuer) but not *who* issued it, and the issuer's name
//! tells a corporate TLS-inspection proxy from a private CA.

/// The names of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// The issuer, as `CN=…, O=…`.
    pub(crate) issuer: String,
    /// The subject, as `CN=…, O=…`.
    pub(crate) subject: String,
    /// True when issuer and subject are the same name (a self-signed
    /// certificate, or a root).
    pub(crate) self_issued: bool,
}

/// One TLV: tag, content, and what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// Reads the issuer and subject of a DER certificate.
pub(crate) fn names(cert: &[u8]) -> Option<Names> {
    let (tag, cert_body, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert_body)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature.
    let (_, _, rest) = tlv(rest)?;
    let (_, _, rest) = tlv(rest)?;
    let (tag, issuer, rest) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    // validity.
    let (_, _, rest) = tlv(rest)?;
    let (tag, subject, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    Some(Names {
        issuer: render_name(issuer),
        subject: render_name(subject),
        self_issued: issuer == subject,
    })
}

/// `CN=…, O=…, OU=…` from a Name's RDN sequence (other attributes skipped).
fn render_name(mut rdns: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((tag, set, rest)) = tlv(rdns) {
        rdns = rest;
        if tag != SET {
            continue;
        }
        let mut atvs = set;
        while let Some((tag, atv, rest)) = tlv(atvs) {
            atvs = rest;
            if tag != SEQUENCE {
                continue;
            }
            let Some((OID, oid, value)) = tlv(atv) else {
                continue;
            };
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            if let Some((vtag, v, _)) = tlv(value) {
                parts.push(format!("{label}={}", string_value(vtag, v)));
            }
        }
    }
    parts.join(", ")
}

fn string_value(tag: u8, v: &[u8]) -> String {
    match tag {
        // BMPString: UCS-2 big-endian.
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        // UTF8String, PrintableString, IA5String, T61String (read as Latin-1-ish).
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}
