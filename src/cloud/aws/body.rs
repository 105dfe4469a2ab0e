//! Request bodies checked as they stream, without buffering them:
//! - [`checked_sha256`]: the body must hash to the `x-amz-content-sha256` the agent signed;
//!   the last frame is held until the hash is known, and on a mismatch the stream fails
//!   instead, so the upstream never sees a complete upload that differs from what was signed.
//! - [`resigned_chunks`]: an aws-chunked body whose chunk signatures are verified and
//!   re-signed one by one ([`ChunkResigner`]).

use bytes::Bytes;
use futures_util::StreamExt;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use sha2::{Digest, Sha256};

use super::chunked::{ChunkError, ChunkResigner};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a streamed body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body does not match its x-amz-content-sha256 (XAmzContentSHA256Mismatch)")]
    Sha256Mismatch,
    #[error("{0}")]
    Chunk(#[from] ChunkError),
    #[error("reading the body failed: {0}")]
    Read(BoxError),
}

/// `body`, failing at its end unless its SHA-256 is `expected_hex` (lower-case hex). The
/// last frame is held back until the hash is known, so a body that does not match never
/// reaches the upstream whole.
pub fn checked_sha256<B>(
    body: B,
    expected_hex: String,
) -> impl Body<Data = Bytes, Error = BoxError> + Send + Unpin
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    struct State<B> {
        body: B,
        hasher: Option<Sha256>,
        expected: String,
        held: Option<Frame<Bytes>>,
    }
    let stream = futures_util::stream::unfold(
        State {
            body,
            hasher: Some(Sha256::new()),
            expected: expected_hex.to_ascii_lowercase(),
            held: None,
        },
        |mut state| async move {
            loop {
                let hasher = state.hasher.as_mut()?;
                match state.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            hasher.update(data);
                        }
                        if let Some(previous) = state.held.replace(frame) {
                            return Some((Ok(previous), state));
                        }
                    }
                    Some(Err(e)) => {
                        state.hasher = None;
                        return Some((Err(Box::new(BodyError::Read(e.into())) as BoxError), state));
                    }
                    None => {
                        let digest = state.hasher.take()?.finalize();
                        let actual = hex::encode(digest);
                        if actual != state.expected {
                            return Some((
                                Err(Box::new(BodyError::Sha256Mismatch) as BoxError),
                                state,
                            ));
                        }
                        let last = state.held.take()?;
                        return Some((Ok(last), state));
                    }
                }
            }
        },
    );
    StreamBody::new(Box::pin(stream))
}

/// `body` (aws-chunked, signed) with every chunk verified and re-signed.
pub fn resigned_chunks<B>(
    body: B,
    resigner: ChunkResigner,
) -> impl Body<Data = Bytes, Error = BoxError> + Send + Unpin
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    struct State<B> {
        body: B,
        resigner: ChunkResigner,
        done: bool,
    }
    let stream = futures_util::stream::unfold(
        State {
            body,
            resigner,
            done: false,
        },
        |mut state| async move {
            if state.done {
                return None;
            }
            loop {
                match state.body.frame().await {
                    Some(Ok(frame)) => {
                        let Some(data) = frame.data_ref() else {
                            continue;
                        };
                        match state.resigner.push(data) {
                            Ok(out) if out.is_empty() => continue,
                            Ok(out) => return Some((Ok(out), state)),
                            Err(e) => {
                                state.done = true;
                                return Some((
                                    Err(Box::new(BodyError::Chunk(e)) as BoxError),
                                    state,
                                ));
                            }
                        }
                    }
                    Some(Err(e)) => {
                        state.done = true;
                        return Some((Err(Box::new(BodyError::Read(e.into())) as BoxError), state));
                    }
                    None => {
                        state.done = true;
                        return match state.resigner.finish() {
                            Ok(()) => None,
                            Err(e) => Some((Err(Box::new(BodyError::Chunk(e)) as BoxError), state)),
                        };
                    }
                }
            }
        },
    )
    .flat_map(|result: Result<Vec<Bytes>, BoxError>| {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = match result {
            Ok(pieces) => pieces.into_iter().map(|b| Ok(Frame::data(b))).collect(),
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(frames)
    });
    StreamBody::new(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn body_of(
        pieces: Vec<&'static [u8]>,
    ) -> impl Body<Data = Bytes, Error = std::io::Error> + Send + Unpin + 'static {
        StreamBody::new(futures_util::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(p)))),
        ))
    }

    #[tokio::test]
    async fn a_matching_body_streams_through_and_a_lying_one_fails_at_the_end() {
        // sha256("hello world")
        let hash = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9".to_string();
        let ok = checked_sha256(body_of(vec![b"hello ", b"world"]), hash.clone())
            .collect()
            .await
            .unwrap();
        assert_eq!(ok.to_bytes(), "hello world");
        // A lying body: what came before its last frame passes, the last frame never does.
        let mut lying = checked_sha256(body_of(vec![b"hello ", b"wor1d"]), hash);
        let first = lying.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "hello ");
        let err = lying
            .frame()
            .await
            .unwrap()
            .expect_err("a mismatching body must fail before its last frame");
        assert!(
            err.to_string().contains("XAmzContentSHA256Mismatch"),
            "{err}"
        );
    }
}
