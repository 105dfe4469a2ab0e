//! Signed streaming uploads (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`): every chunk
//! carries a signature chained from the previous one (the first from the request's header
//! signature), so re-signing the headers alone would break the body. [`ChunkResigner`]
//! parses the aws-chunked body as it streams, verifies each chunk against the agent's chain
//! before releasing it, and re-signs it on the session's chain. Signatures are fixed-length,
//! so `Content-Length` does not change. At most one chunk is held in memory.
//!
//! Wire format (S3 `sigv4-streaming`):
//! `<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n` … `0;chunk-signature=<sig>\r\n`, then
//! `\r\n`, or with a trailer: `<name>:<value>\r\n` … `x-amz-trailer-signature:<sig>\r\n\r\n`.

use aws_credential_types::Credentials;
use aws_sigv4::SigningOutput;
use aws_sigv4::http_request::SigningError;
use aws_sigv4::sign::v4::{SigningParams, sign_chunk, sign_trailer};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::http::Headers;
use bytes::{Buf, Bytes, BytesMut};
use subtle::ConstantTimeEq;

/// Largest chunk accepted (SDKs use 64 KiB to 8 MiB).
pub const MAX_CHUNK: usize = 16 * 1024 * 1024;
/// Longest chunk header or trailer line.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed aws-chunked body: {0}")]
    Malformed(String),
    #[error("a chunk signature does not match")]
    SignatureDoesNotMatch,
    #[error("the aws-chunked body ended before its final chunk")]
    Truncated,
}

/// Which chain a signature belongs to: identity, scope and the running signature.
pub struct Chain {
    identity: Identity,
    region: String,
    service: String,
    time: std::time::SystemTime,
    previous: String,
}

impl Chain {
    /// `seed` is the request's header signature for this identity.
    pub fn new(
        access_key_id: &str,
        secret: &str,
        session_token: Option<&str>,
        region: &str,
        service: &str,
        time: std::time::SystemTime,
        seed: &str,
    ) -> Chain {
        let identity = Credentials::new(
            access_key_id,
            secret,
            session_token.map(str::to_string),
            None,
            "airlock-chunk",
        )
        .into();
        Chain {
            identity,
            region: region.into(),
            service: service.into(),
            time,
            previous: seed.into(),
        }
    }

    fn params(&self) -> Result<SigningParams<'_, ()>, ChunkError> {
        SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(&self.service)
            .time(self.time)
            .settings(())
            .build()
            .map_err(|e| ChunkError::Malformed(e.to_string()))
    }

    fn chunk(&mut self, data: &Bytes) -> Result<String, ChunkError> {
        self.advance(|previous, params| sign_chunk(data, previous, params))
    }

    fn trailer(&mut self, headers: &Headers) -> Result<String, ChunkError> {
        self.advance(|previous, params| sign_trailer(headers, previous, params))
    }

    /// Sign the next link from the running signature, and make it the running signature.
    fn advance(
        &mut self,
        sign: impl FnOnce(&str, &SigningParams<'_, ()>) -> Result<SigningOutput<()>, SigningError>,
    ) -> Result<String, ChunkError> {
        let signature = {
            let params = self.params()?;
            sign(&self.previous, &params)
                .map_err(|e| ChunkError::Malformed(e.to_string()))?
                .signature()
                .to_string()
        };
        self.previous.clone_from(&signature);
        Ok(signature)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ChunkHeader,
    ChunkData { size: usize },
    AfterFinal,
    Trailer,
    Done,
}

/// Verifies the agent's chain and re-signs on the session's, chunk by chunk.
pub struct ChunkResigner {
    agent: Chain,
    session: Chain,
    trailer: bool,
    state: State,
    buffer: BytesMut,
    pending_signature: String,
    trailer_headers: Headers,
    trailer_lines: Vec<String>,
}

impl ChunkResigner {
    /// `trailer`: the body ends with signed trailing headers (`…-PAYLOAD-TRAILER`).
    pub fn new(agent: Chain, session: Chain, trailer: bool) -> ChunkResigner {
        ChunkResigner {
            agent,
            session,
            trailer,
            state: State::ChunkHeader,
            buffer: BytesMut::new(),
            pending_signature: String::new(),
            trailer_headers: Headers::new(),
            trailer_lines: Vec::new(),
        }
    }

    /// Feed the next bytes of the agent's body; returns the re-signed bytes ready to send.
    pub fn push(&mut self, input: &[u8]) -> Result<Vec<Bytes>, ChunkError> {
        self.buffer.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            match self.state {
                State::ChunkHeader => {
                    let Some(line) = self.take_line()? else { break };
                    let (size, signature) = parse_chunk_header(&line)?;
                    self.pending_signature = signature;
                    if size == 0 {
                        // The final chunk: no data line; trailers or the closing CRLF follow.
                        let resigned = self.verify_and_resign(&Bytes::new())?;
                        out.push(Bytes::from(format!("0;chunk-signature={resigned}\r\n")));
                        self.state = if self.trailer {
                            State::Trailer
                        } else {
                            State::AfterFinal
                        };
                    } else {
                        self.state = State::ChunkData { size };
                    }
                }
                State::ChunkData { size } => {
                    if self.buffer.len() < size + 2 {
                        break;
                    }
                    let data = self.buffer.split_to(size).freeze();
                    if &self.buffer[..2] != b"\r\n" {
                        return Err(ChunkError::Malformed(
                            "chunk data not followed by CRLF".into(),
                        ));
                    }
                    self.buffer.advance(2);
                    let resigned = self.verify_and_resign(&data)?;
                    out.push(Bytes::from(format!(
                        "{size:x};chunk-signature={resigned}\r\n"
                    )));
                    out.push(data);
                    out.push(Bytes::from_static(b"\r\n"));
                    self.state = State::ChunkHeader;
                }
                State::AfterFinal => {
                    let Some(line) = self.take_line()? else { break };
                    if !line.is_empty() {
                        return Err(ChunkError::Malformed("data after the final chunk".into()));
                    }
                    out.push(Bytes::from_static(b"\r\n"));
                    self.state = State::Done;
                }
                State::Trailer => {
                    let Some(line) = self.take_line()? else { break };
                    if line.is_empty() {
                        return Err(ChunkError::Malformed(
                            "trailer without x-amz-trailer-signature".into(),
                        ));
                    }
                    let (name, value) = line.split_once(':').ok_or_else(|| {
                        ChunkError::Malformed(format!("bad trailer line `{line}`"))
                    })?;
                    if name.eq_ignore_ascii_case("x-amz-trailer-signature") {
                        let expected = self.agent.trailer(&self.trailer_headers)?;
                        if !bool::from(expected.as_bytes().ct_eq(value.trim().as_bytes())) {
                            return Err(ChunkError::SignatureDoesNotMatch);
                        }
                        let resigned = self.session.trailer(&self.trailer_headers)?;
                        for line in self.trailer_lines.drain(..) {
                            out.push(Bytes::from(format!("{line}\r\n")));
                        }
                        out.push(Bytes::from(format!(
                            "x-amz-trailer-signature:{resigned}\r\n"
                        )));
                        self.state = State::AfterFinal;
                    } else {
                        self.trailer_headers
                            .append(name.trim().to_string(), value.trim().to_string());
                        self.trailer_lines.push(line);
                    }
                }
                State::Done => {
                    if !self.buffer.is_empty() {
                        return Err(ChunkError::Malformed(
                            "data after the end of the body".into(),
                        ));
                    }
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Check the pending chunk signature on the agent's chain; its signature on the session's.
    fn verify_and_resign(&mut self, data: &Bytes) -> Result<String, ChunkError> {
        let expected = self.agent.chunk(data)?;
        if !bool::from(expected.as_bytes().ct_eq(self.pending_signature.as_bytes())) {
            return Err(ChunkError::SignatureDoesNotMatch);
        }
        self.session.chunk(data)
    }

    /// The body ended: it must have been complete.
    pub fn finish(&self) -> Result<(), ChunkError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(ChunkError::Truncated)
        }
    }

    /// The next CRLF-terminated line, without its CRLF.
    fn take_line(&mut self) -> Result<Option<String>, ChunkError> {
        let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") else {
            if self.buffer.len() > MAX_LINE {
                return Err(ChunkError::Malformed("line too long".into()));
            }
            return Ok(None);
        };
        let line = self.buffer.split_to(end);
        self.buffer.advance(2);
        String::from_utf8(line.to_vec())
            .map(Some)
            .map_err(|_| ChunkError::Malformed("line is not text".into()))
    }
}

/// The payload of an aws-chunked body with unsigned chunks (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`)
/// read whole: `<hex size>\r\n<data>\r\n`… up to the zero-size chunk, whose trailers
/// (a checksum of the payload) are left out. `None` when it is not well formed or holds
/// more than `max` bytes of payload: such a body is not bound by its bytes.
pub fn unsigned_payload(raw: &[u8], max: usize) -> Option<Vec<u8>> {
    let mut payload = Vec::new();
    let mut rest = raw;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(payload);
        }
        // Sizes come from the agent: checked arithmetic, no slice past the end.
        if size > max.saturating_sub(payload.len()) {
            return None;
        }
        let end = size.checked_add(2)?;
        if rest.get(size..end)? != b"\r\n" {
            return None;
        }
        payload.extend_from_slice(rest.get(..size)?);
        rest = rest.get(end..)?;
    }
}

/// `10000;chunk-signature=<64 hex>` → (size, signature).
fn parse_chunk_header(line: &str) -> Result<(usize, String), ChunkError> {
    let (size, signature) = line.split_once(";chunk-signature=").ok_or_else(|| {
        ChunkError::Malformed(format!("chunk header without signature: `{line}`"))
    })?;
    // The size is re-written as `{size:x}`: only that spelling keeps the body's length.
    let text = size;
    let size = usize::from_str_radix(text, 16)
        .ok()
        .filter(|n| format!("{n:x}") == text)
        .ok_or_else(|| ChunkError::Malformed(format!("bad chunk size `{text}`")))?;
    if size > MAX_CHUNK {
        return Err(ChunkError::Malformed(format!(
            "chunk of {size} bytes exceeds {MAX_CHUNK}"
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ChunkError::Malformed(
            "chunk signature is not 64 hex digits".into(),
        ));
    }
    Ok((size, signature.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_chunks_yield_their_payload_without_the_trailer() {
        let raw = b"4\r\nten \r\n6\r\nbytes!\r\n0\r\nx-amz-checksum-crc32:abcd==\r\n\r\n";
        assert_eq!(unsigned_payload(raw, 100).unwrap(), b"ten bytes!");
        assert_eq!(unsigned_payload(raw, 5), None, "over the cap");
        assert_eq!(unsigned_payload(b"4\r\nten", 100), None, "cut short");
        assert_eq!(unsigned_payload(b"zz\r\n", 100), None, "not a size");
        // Hostile sizes: no overflow, no slice past the end.
        assert_eq!(
            unsigned_payload(b"1\r\na\r\nffffffffffffffff\r\nxx", usize::MAX),
            None
        );
        assert_eq!(unsigned_payload(b"ffffffffffffffff\r\n", usize::MAX), None);
        assert_eq!(unsigned_payload(b"5\r\nab", usize::MAX), None);
    }

    /// AWS's published example (S3 API reference, "Signature calculations for the
    /// Authorization header: transferring payload in multiple chunks"): 64 KiB + 1 KiB of
    /// `a`, signed 2013-05-24 with the documentation key.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn time() -> std::time::SystemTime {
        crate::cloud::aws::sigv4::parse_amz_date("20130524T000000Z").unwrap()
    }

    fn aws_example_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={}\r\n", SIGS[0]).as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", SIGS[1]).as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", SIGS[2]).as_bytes());
        body
    }

    fn agent() -> Chain {
        Chain::new(
            "AKIAIOSFODNN7EXAMPLE",
            SECRET,
            None,
            "us-east-1",
            "s3",
            time(),
            SEED,
        )
    }

    fn session(seed: &str) -> Chain {
        Chain::new(
            "ASIAEXAMPLE",
            "session-secret",
            Some("token"),
            "us-east-1",
            "s3",
            time(),
            seed,
        )
    }

    fn run(body: &[u8], step: usize) -> Result<Vec<u8>, ChunkError> {
        let mut resigner = ChunkResigner::new(agent(), session("00"), false);
        let mut out = Vec::new();
        for piece in body.chunks(step) {
            for bytes in resigner.push(piece)? {
                out.extend_from_slice(&bytes);
            }
        }
        resigner.finish()?;
        Ok(out)
    }

    #[test]
    fn the_aws_documentation_example_verifies_and_is_resigned_in_place() {
        let body = aws_example_body();
        for step in [1, 7, 1000, 65536, body.len()] {
            let out = run(&body, step).unwrap();
            assert_eq!(
                out.len(),
                body.len(),
                "re-signing must not change Content-Length"
            );
            let text = String::from_utf8_lossy(&out);
            assert!(
                !text.contains(SIGS[0]),
                "the agent's signature was forwarded"
            );
            // The session chain re-verifies: feed the output to a resigner expecting it.
            let mut check = ChunkResigner::new(session("00"), session("00"), false);
            check.push(&out).unwrap();
            check.finish().unwrap();
        }
    }

    #[test]
    fn a_tampered_chunk_a_wrong_key_or_a_truncated_body_are_refused() {
        let mut body = aws_example_body();
        body[200] = b'b';
        assert_eq!(run(&body, 4096), Err(ChunkError::SignatureDoesNotMatch));
        let body = aws_example_body();
        let mut wrong = ChunkResigner::new(
            Chain::new(
                "AKIAIOSFODNN7EXAMPLE",
                "other",
                None,
                "us-east-1",
                "s3",
                time(),
                SEED,
            ),
            session("00"),
            false,
        );
        assert_eq!(
            wrong.push(&body).map(|_| ()),
            Err(ChunkError::SignatureDoesNotMatch)
        );
        assert_eq!(
            run(&body[..body.len() - 60], 4096),
            Err(ChunkError::Truncated)
        );
        assert!(matches!(
            run(b"zz;chunk-signature=00\r\n", 10),
            Err(ChunkError::Malformed(_))
        ));
    }

    #[test]
    fn trailers_are_verified_and_resigned() {
        // An agent-side body with a checksum trailer, signed on the agent's chain.
        let mut signer = agent();
        let data = Bytes::from_static(b"hello world");
        let mut body = format!(
            "b;chunk-signature={}\r\nhello world\r\n",
            signer.chunk(&data).unwrap()
        )
        .into_bytes();
        body.extend_from_slice(
            format!(
                "0;chunk-signature={}\r\n",
                signer.chunk(&Bytes::new()).unwrap()
            )
            .as_bytes(),
        );
        let mut trailer = Headers::new();
        trailer.append("x-amz-checksum-crc32", "DUoRhQ==");
        body.extend_from_slice(b"x-amz-checksum-crc32:DUoRhQ==\r\n");
        body.extend_from_slice(
            format!(
                "x-amz-trailer-signature:{}\r\n\r\n",
                signer.trailer(&trailer).unwrap()
            )
            .as_bytes(),
        );

        let mut resigner = ChunkResigner::new(agent(), session("00"), true);
        let out: Vec<u8> = resigner.push(&body).unwrap().concat();
        resigner.finish().unwrap();
        assert_eq!(out.len(), body.len());
        assert!(String::from_utf8_lossy(&out).contains("x-amz-checksum-crc32:DUoRhQ==\r\n"));
        let mut check = ChunkResigner::new(session("00"), session("00"), true);
        check.push(&out).unwrap();
        check.finish().unwrap();

        // A changed trailer value is refused.
        let forged = String::from_utf8(body)
            .unwrap()
            .replace("DUoRhQ==", "AAAAAA==");
        let mut resigner = ChunkResigner::new(agent(), session("00"), true);
        assert_eq!(
            resigner.push(forged.as_bytes()).map(|_| ()),
            Err(ChunkError::SignatureDoesNotMatch)
        );
    }

    #[tokio::test]
    async fn the_streaming_adapter_resigns_a_body_arriving_in_frames() {
        use http_body_util::{BodyExt, StreamBody};
        let body = aws_example_body();
        let direct = run(&body, body.len()).unwrap();
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = body
            .chunks(3000)
            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let streamed = crate::cloud::aws::body::resigned_chunks(
            StreamBody::new(futures_util::stream::iter(frames)),
            ChunkResigner::new(agent(), session("00"), false),
        );
        let out = streamed.collect().await.unwrap().to_bytes();
        assert_eq!(out.as_ref(), direct.as_slice());

        // A tampered chunk: the stream fails before the bad chunk is released.
        let mut bad = body.clone();
        bad[66_000] = b'b'; // inside the second chunk
        let frames: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = bad
            .chunks(3000)
            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let streamed = crate::cloud::aws::body::resigned_chunks(
            StreamBody::new(futures_util::stream::iter(frames)),
            ChunkResigner::new(agent(), session("00"), false),
        );
        let err = streamed
            .collect()
            .await
            .expect_err("tampering must fail the stream");
        assert!(
            err.to_string().contains("chunk signature does not match"),
            "{err}"
        );
    }
}
