//! A server-sent events parser (the WHATWG "event stream interpretation"),
//! fed chunk by chunk as they arrive: lines end in CRLF, LF or CR (a CRLF may
//! be split across chunks), `:` lines are comments, `field: value` drops one
//! space after the colon, several `data:` lines join with `\n`, a blank line
//! dispatches the event, and one without data is not dispatched. A leading
//! UTF-8 BOM is skipped.

use std::time::Duration;

/// Longest line, and largest event, accepted: a stream that exceeds them is
/// broken (or hostile) and is dropped rather than buffered without bound.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;
pub(crate) const MAX_EVENT_BYTES: usize = 256 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `id:` of this event's own lines, if it had one. (The spec's "last
    /// event id" carries over to later events; the hub needs each event's own.)
    pub(crate) id: Option<String>,
    /// `event:`; `None` is the spec's default type, `message`.
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    #[error("an event stream line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("an event larger than {MAX_EVENT_BYTES} bytes")]
    EventTooLarge,
}

#[derive(Debug)]
pub(crate) struct SseParser {
    /// The current line so far (without its ending).
    line: Vec<u8>,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
    /// No line ended yet (the BOM can only lead the first one).
    first_line: bool,
    /// The event being read.
    id: Option<String>,
    event: Option<String>,
    data: String,
    /// The last `retry:` (reconnection time) the stream sent.
    retry: Option<Duration>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            id: None,
            event: None,
            data: String::new(),
            retry: None,
        }
    }
}

impl SseParser {
    /// Parses `chunk`, appending the events it completes to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out)?;
                }
                b'\n' => self.end_line(out)?,
                _ if self.line.len() >= MAX_LINE_BYTES => return Err(SseError::LineTooLong),
                _ => self.line.push(byte),
            }
        }
        Ok(())
    }

    /// The reconnection time the stream asked for, if it did.
    pub(crate) fn retry(&self) -> Option<Duration> {
        self.retry
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        let mut line = line.as_slice();
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(b":") {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event = Some(value.into_owned()),
            b"data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                    return Err(SseError::EventTooLarge);
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            // Unknown fields (and a bad id or retry) are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let id = self.id.take();
        let event = self.event.take();
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the '\n' after the last data line
        out.push(SseEvent { id, event, data });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn event(id: Option<&str>, event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(Into::into),
            event: event.map(Into::into),
            data: data.into(),
        }
    }

    #[test]
    fn reads_the_contract_form() {
        let text =
            b"id: 7\nevent: order\ndata: {\"a\":1}\n\n:\n\nid: 8\nevent: order\ndata: {}\n\n";
        assert_eq!(
            parse_chunks(&[text]),
            vec![
                event(Some("7"), Some("order"), "{\"a\":1}"),
                event(Some("8"), Some("order"), "{}"),
            ]
        );
    }

    #[test]
    fn any_split_into_chunks_reads_the_same() {
        let text: &[u8] =
            b"\xEF\xBB\xBFid: 1\r\nevent: order\r\ndata: a\r\ndata: b\r\n\r\n: hi\rid:2\rdata:c\r\r";
        let whole = parse_chunks(&[text]);
        assert_eq!(
            whole,
            vec![
                event(Some("1"), Some("order"), "a\nb"),
                event(Some("2"), None, "c")
            ]
        );
        for split in 0..=text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(parse_chunks(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), whole, "byte by byte");
    }

    #[test]
    fn comments_blank_data_and_unknown_fields() {
        let text = b": keep-alive\n\nid: 3\n\nfoo: bar\ndata\ndata\n\ndata:  two spaces\nretry: 250\nretry: x\n\n";
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        parser.feed(text, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                // `data` without a colon is an empty data line; two of them: one "\n".
                event(None, None, "\n"),
                event(None, None, " two spaces"),
            ],
            "an id-only block is not an event, nor does its id carry over"
        );
        assert_eq!(parser.retry(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert_eq!(parse_chunks(&[b"id: 1\ndata: x\n"]), vec![]);
    }

    #[test]
    fn overlong_lines_and_events_are_errors() {
        let mut parser = SseParser::default();
        let long = vec![b'a'; MAX_LINE_BYTES + 1];
        assert_eq!(
            parser.feed(&long, &mut Vec::new()),
            Err(SseError::LineTooLong)
        );
        let mut parser = SseParser::default();
        let line = format!("data: {}\n", "x".repeat(MAX_LINE_BYTES - 10));
        let result = (0..MAX_EVENT_BYTES / MAX_LINE_BYTES + 1)
            .try_for_each(|_| parser.feed(line.as_bytes(), &mut Vec::new()));
        assert_eq!(result, Err(SseError::EventTooLarge));
    }
}
