//! JSON bodies for the answers that hyper's HTTP/1.1 parser gives by itself.
//!
//! A request that cannot be parsed (a malformed request line, a URI or headers too long, too
//! many headers) never reaches a router: hyper answers `400`, `414` or `431` with an empty body
//! and closes the connection, and offers no hook to shape that answer. Everything else the server
//! says has the body `{"error": {"code", "message"}}`, and clients and scripts rely on it. So the
//! connection's stream is wrapped: a response head that hyper wrote for a parse error is
//! recognised on its way out (one of those three statuses with `content-length: 0`, which no
//! handler here writes, since every error of theirs has a body) and rewritten with the JSON body.
//! Every other write passes through untouched.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use models::{ApiError, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The parse errors hyper answers itself, with the code and message the JSON body carries.
fn body_for(status_line: &[u8]) -> Option<String> {
    let (code, message) = match status_line {
        b"HTTP/1.1 400 Bad Request" => (
            ErrorCode::InvalidRequest,
            "the request is not valid HTTP/1.1 (request line or headers could not be parsed)",
        ),
        b"HTTP/1.1 414 URI Too Long" => (ErrorCode::UriTooLong, "the request's URI is too long"),
        b"HTTP/1.1 431 Request Header Fields Too Large" => (
            ErrorCode::HeadersTooLarge,
            "the request's headers are too large or too many (at most 100)",
        ),
        _ => return None,
    };
    serde_json::to_string(&ApiError::new(code, message)).ok()
}

/// The head of hyper's answer to a parse error, rewritten with a JSON body; `None` for any other
/// write.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
    // Cheap tests first: this runs on every write of every connection, bodies included.
    if head.len() > 512 || !head.starts_with(b"HTTP/1.1 4") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    if !head.windows(EMPTY.len()).any(|w| w == EMPTY) {
        return None;
    }
    let body = body_for(&head[..line_end])?;
    let text = std::str::from_utf8(head).ok()?;
    let with_body = text.replacen(
        "\r\ncontent-length: 0\r\n",
        &format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ),
        1,
    );
    Some([with_body.as_bytes(), body.as_bytes()].concat())
}

/// A connection's stream, with parse-error answers given their JSON body.
#[derive(Debug)]
pub struct WithJsonErrors<S> {
    inner: S,
    /// A rewritten answer not yet written out, and how many bytes of the caller's buffer it
    /// stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> WithJsonErrors<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WithJsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> WithJsonErrors<S> {
    /// Writes out the rewritten answer; `Ready` with the length of the caller's buffer it
    /// replaced once all of it is written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, stands_for)) = &mut self.pending {
            if *written == bytes.len() {
                let stands_for = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(stands_for));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WithJsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match rewrite(buf) {
                Some(bytes) => self.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.poll_pending(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper writes the head of an answer without a body as one slice.
        if self.pending.is_some() || (bufs.len() == 1 && rewrite(&bufs[0]).is_some()) {
            return self.poll_write(cx, bufs.first().map_or(&[][..], |b| &b[..]));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD_431: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
content-length: 0\r\ndate: Thu, 03 Dec 2026 13:10:11 GMT\r\n\r\n";

    #[test]
    fn a_parse_error_gets_the_json_body_with_its_length() {
        let rewritten = String::from_utf8(rewrite(HEAD_431).unwrap()).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let error: ApiError = serde_json::from_str(body).unwrap();
        assert_eq!(error.error.code, "HEADERS_TOO_LARGE");
    }

    #[test]
    fn other_writes_pass_untouched() {
        for write in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 57\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n",
            b"{\"error\": {}}",
        ] {
            assert_eq!(rewrite(write), None, "{}", String::from_utf8_lossy(write));
        }
    }

    #[tokio::test]
    async fn the_rewritten_answer_is_written_whole_and_stands_for_the_head() {
        use tokio::io::AsyncWriteExt;
        let mut out = WithJsonErrors::new(Vec::new());
        out.write_all(HEAD_431).await.unwrap();
        out.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        assert!(text.contains("\"code\":\"HEADERS_TOO_LARGE\""), "{text}");
        assert!(text.ends_with("}HTTP/1.1 200 OK\r\n"), "{text}");
    }
}
