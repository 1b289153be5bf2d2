//! HTTP/2 written by hand: literal HPACK, no Huffman, one stream. Enough to
//! send what hyper's client refuses to, and to read the status and body back.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::answer::Answer;
use super::transports::READ_LIMIT;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn integer(out: &mut Vec<u8>, prefix_bits: u32, flags: u8, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Every field as "literal without indexing, new name", no Huffman.
fn header_block(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0x00);
        integer(&mut out, 7, 0, name.len());
        out.extend_from_slice(name);
        integer(&mut out, 7, 0, value.len());
        out.extend_from_slice(value);
    }
    out
}

fn read_integer(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Option<usize> {
    let max = (1usize << prefix_bits) - 1;
    let mut value = usize::from(*block.get(*pos)?) & max;
    *pos += 1;
    if value < max {
        return Some(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*pos)?;
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        if shift > 28 {
            return None;
        }
    }
}

/// Huffman-coded digits (RFC 7541 appendix B: '0'-'2' take 5 bits, '3'-'9' 6).
fn huffman_digits(raw: &[u8]) -> String {
    let bits: Vec<u8> = raw
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i + 5 <= bits.len() {
        let code5 = bits[i..i + 5].iter().fold(0u8, |a, b| (a << 1) | b);
        if code5 <= 2 {
            out.push(char::from(b'0' + code5));
            i += 5;
            continue;
        }
        let Some(&bit) = bits.get(i + 5) else { break };
        let code6 = (code5 << 1) | bit;
        if (0b011001..=0b011111).contains(&code6) {
            out.push(char::from(b'3' + (code6 - 0b011001)));
            i += 6;
            continue;
        }
        break;
    }
    out
}

/// `:status` from the first field of a response header block.
fn status(block: &[u8]) -> Option<u16> {
    let mut pos = 0;
    while block.get(pos)? & 0xe0 == 0x20 {
        read_integer(block, &mut pos, 5)?;
    }
    let first = *block.get(pos)?;
    if first & 0x80 != 0 {
        return match read_integer(block, &mut pos, 7)? {
            8 => Some(200),
            9 => Some(204),
            10 => Some(206),
            11 => Some(304),
            12 => Some(400),
            13 => Some(404),
            14 => Some(500),
            _ => None,
        };
    }
    let prefix = if first & 0x40 != 0 { 6 } else { 4 };
    if read_integer(block, &mut pos, prefix)? != 8 {
        return None;
    }
    let huffman = block.get(pos)? & 0x80 != 0;
    let len = read_integer(block, &mut pos, 7)?;
    let raw = block.get(pos..pos + len)?;
    let text = if huffman {
        huffman_digits(raw)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    text.parse().ok()
}

fn unpad(flags: u8, mut payload: &[u8], priority: bool) -> Vec<u8> {
    let mut pad = 0;
    if flags & PADDED != 0 && !payload.is_empty() {
        pad = usize::from(payload[0]);
        payload = &payload[1..];
    }
    if priority && flags & PRIORITY != 0 {
        payload = payload.get(5..).unwrap_or_default();
    }
    payload[..payload.len().saturating_sub(pad)].to_vec()
}

/// Sends one request on stream 1; returns the answer, or why there is none.
pub async fn exchange(
    addr: SocketAddr,
    headers: &[(Vec<u8>, Vec<u8>)],
    data: &[Vec<u8>],
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let end = if data.is_empty() { END_STREAM } else { 0 };
    out.extend(frame(HEADERS, END_HEADERS | end, 1, &header_block(headers)));
    for (i, chunk) in data.iter().enumerate() {
        let end = if i + 1 == data.len() { END_STREAM } else { 0 };
        out.extend(frame(DATA, end, 1, chunk));
    }
    let _ = stream.write_all(&out).await;
    let mut answer = Answer {
        opaque: true,
        ..Answer::default()
    };
    let mut got_headers = false;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + READ_LIMIT;
    let finish = |mut answer: Answer| {
        if answer.status == 0 {
            // Fall back on the JSON message, which starts with the status.
            answer.status = serde_json::from_slice::<serde_json::Value>(&answer.body)
                .ok()
                .and_then(|j| j["message"].as_str().map(str::to_owned))
                .and_then(|m| m.get(..3).and_then(|s| s.parse().ok()))
                .unwrap_or(0);
        }
        Ok(answer)
    };
    loop {
        while buffer.len() >= 9 {
            let len = (usize::from(buffer[0]) << 16)
                | (usize::from(buffer[1]) << 8)
                | usize::from(buffer[2]);
            if buffer.len() < 9 + len {
                break;
            }
            let kind = buffer[3];
            let flags = buffer[4];
            let id = u32::from_be_bytes([buffer[5], buffer[6], buffer[7], buffer[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buffer[9..9 + len].to_vec();
            buffer.drain(..9 + len);
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    let _ = stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                }
                PING if flags & ACK == 0 => {
                    let _ = stream.write_all(&frame(PING, ACK, 0, &payload)).await;
                }
                HEADERS if id == 1 => {
                    if !got_headers {
                        got_headers = true;
                        answer.status = status(&unpad(flags, &payload, true)).unwrap_or(0);
                    }
                    if flags & END_STREAM != 0 {
                        return finish(answer);
                    }
                }
                DATA if id == 1 => {
                    answer.body.extend(unpad(flags, &payload, false));
                    if flags & END_STREAM != 0 {
                        return finish(answer);
                    }
                }
                RST_STREAM if id == 1 => {
                    let code = payload
                        .get(..4)
                        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    return Err(format!("stream reset (error code {code})"));
                }
                GOAWAY => {
                    let last = payload.get(..4).map_or(0, |c| {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff
                    });
                    let code = payload
                        .get(4..8)
                        .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    if last < 1 || code != 0 {
                        return Err(format!("GOAWAY (error code {code})"));
                    }
                }
                _ => {}
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err("connection closed".into()),
            Err(_) => return Err("no answer in time".into()),
            Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}
