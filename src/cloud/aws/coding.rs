//! Content codings of request bodies, as the classifier reads them.
//!
//! botocore compresses some request bodies (`requestcompression` in the model, e.g.
//! CloudWatch `PutMetricData`, whatever the wire protocol) once they reach
//! `request_min_compression_size_bytes`, and says so with `Content-Encoding: gzip`. The
//! signature covers the compressed bytes, so those are what the proxy forwards, untouched:
//! only the classifier's view is decompressed, here, and only when an operation's
//! parameters travel in the body. Where the body is an opaque payload (S3 `PutObject`
//! with `Content-Encoding: gzip` stores a compressed object) it is never decoded.
//!
//! Decompression is bounded ([`MAX_DECODED`]), so a small hostile body cannot expand
//! into a large one, and reads exactly one gzip member: anything after it is refused
//! rather than ignored, since AWS and Airlock might read such a body differently. Any
//! other coding is an explicit unknown.

use std::borrow::Cow;
use std::io::Read;

/// The most a compressed body may expand to for classification (1 MiB).
pub const MAX_DECODED: usize = 1 << 20;

/// A request body and the content coding its headers declare.
pub struct CodedBody<'a> {
    raw: &'a [u8],
    coding: Option<String>,
}

impl<'a> CodedBody<'a> {
    /// `raw` as sent, with the request's `Content-Encoding` header (if any).
    pub fn new(raw: &'a [u8], headers: &http::HeaderMap) -> Self {
        let mut codings = Vec::new();
        for value in headers.get_all(http::header::CONTENT_ENCODING) {
            let text = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
            codings.extend(
                text.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty() && c != "identity"),
            );
        }
        let coding = (!codings.is_empty()).then(|| codings.join(","));
        CodedBody { raw, coding }
    }

    /// The bytes as sent (what is signed and forwarded).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the body is compressed (its parameters need [`decoded`](Self::decoded)).
    pub fn is_coded(&self) -> bool {
        self.coding.is_some()
    }

    /// The body as the API reads it: decompressed where it was compressed; an error (the
    /// reason for an explicit unknown) for a coding Airlock does not read, a corrupt or
    /// trailing-data gzip stream, or one that expands past [`MAX_DECODED`].
    pub fn decoded(&self) -> Result<Cow<'a, [u8]>, String> {
        match self.coding.as_deref() {
            None => Ok(Cow::Borrowed(self.raw)),
            Some(_) if self.raw.is_empty() => Ok(Cow::Borrowed(self.raw)),
            Some("gzip" | "x-gzip") => gunzip(self.raw).map(Cow::Owned),
            Some(other) => Err(format!(
                "the body's parameters are sent with Content-Encoding `{other}`, which Airlock does not decode (only gzip)"
            )),
        }
    }
}

/// One gzip member, at most [`MAX_DECODED`] bytes once decompressed, with nothing after it.
fn gunzip(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::bufread::GzDecoder::new(raw);
    let mut out = Vec::new();
    (&mut decoder)
        .take(MAX_DECODED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzip-encoded body does not decompress: {e}"))?;
    if out.len() > MAX_DECODED {
        return Err(format!(
            "the gzip-encoded body decompresses to more than {MAX_DECODED} bytes, the most Airlock reads to classify a call"
        ));
    }
    if !decoder.into_inner().is_empty() {
        return Err(
            "the gzip-encoded body has data after its first gzip member, which Airlock does not read"
                .into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn headers(encoding: Option<&str>) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        if let Some(e) = encoding {
            map.insert(http::header::CONTENT_ENCODING, e.parse().unwrap());
        }
        map
    }

    #[test]
    fn gzip_bodies_decode_and_plain_ones_pass_through() {
        let packed = gzip(b"Action=PutMetricData");
        let body = CodedBody::new(&packed, &headers(Some("gzip")));
        assert!(body.is_coded());
        assert_eq!(body.raw(), packed.as_slice(), "the raw bytes stay as sent");
        assert_eq!(&*body.decoded().unwrap(), b"Action=PutMetricData");
        let body = CodedBody::new(&packed, &headers(Some(" GZIP , identity")));
        assert_eq!(&*body.decoded().unwrap(), b"Action=PutMetricData");
        let plain = CodedBody::new(b"{}", &headers(None));
        assert!(!plain.is_coded());
        assert_eq!(&*plain.decoded().unwrap(), b"{}");
        let identity = CodedBody::new(b"{}", &headers(Some("identity")));
        assert!(!identity.is_coded());
    }

    #[test]
    fn other_codings_and_bad_streams_are_refused_with_a_reason() {
        let packed = gzip(b"{}");
        for coding in ["br", "deflate", "zstd", "aws-chunked", "gzip, br"] {
            let err = CodedBody::new(&packed, &headers(Some(coding)))
                .decoded()
                .unwrap_err();
            assert!(err.contains("does not decode"), "{coding}: {err}");
        }
        let err = CodedBody::new(b"not gzip at all", &headers(Some("gzip")))
            .decoded()
            .unwrap_err();
        assert!(err.contains("does not decompress"), "{err}");
        let truncated = &packed[..packed.len() - 4];
        assert!(
            CodedBody::new(truncated, &headers(Some("gzip")))
                .decoded()
                .is_err()
        );
        // Two members: what a second member says is never silently dropped.
        let mut two = gzip(b"Action=PutMetricData");
        two.extend(gzip(b"&Action=DeleteAlarms"));
        let err = CodedBody::new(&two, &headers(Some("gzip")))
            .decoded()
            .unwrap_err();
        assert!(err.contains("after its first gzip member"), "{err}");
    }

    #[test]
    fn decompression_is_capped() {
        // 16 MiB of zeros compress to ~16 KiB: only the cap (plus one byte) is inflated.
        let bomb = gzip(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let err = CodedBody::new(&bomb, &headers(Some("gzip")))
            .decoded()
            .unwrap_err();
        assert!(err.contains("more than 1048576 bytes"), "{err}");
        // Exactly the cap is fine.
        let full = gzip(&vec![b'a'; MAX_DECODED]);
        assert_eq!(
            CodedBody::new(&full, &headers(Some("gzip")))
                .decoded()
                .unwrap()
                .len(),
            MAX_DECODED
        );
    }
}
