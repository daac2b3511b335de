//! The fuzzer's HTTP/1.1 client, written on a bare TCP socket so that every byte of a request
//! is the fuzzer's choice: any method, a request target with `..`, `%2F` or control bytes left
//! as they are, lying headers. One keep-alive connection per worker, reopened when the server
//! closes it. Responses are read with their status, headers and whole body.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// The most a response body may hold before the client gives up on it.
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_HEAD: usize = 256 * 1024;

/// One request, as bytes.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Whether valid credentials are added when auth is on (and no `Authorization` is set).
    pub auth: bool,
}

impl Req {
    pub fn new(method: &str, target: impl Into<Vec<u8>>) -> Req {
        Req {
            method: method.to_string(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            auth: true,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Req {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    /// Sends no credentials of its own.
    pub fn no_auth(mut self) -> Req {
        self.auth = false;
        self
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }

    pub fn path(&self) -> String {
        let target = String::from_utf8_lossy(&self.target);
        target.split('?').next().unwrap_or_default().to_string()
    }

    /// The bytes on the wire, with `Host` and (unless the request sets its own framing) a
    /// `Content-Length` that tells the truth.
    pub fn to_bytes(&self, host: &str, authorization: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self.has_header("host") {
            out.extend_from_slice(format!("host: {host}\r\n").as_bytes());
        }
        if let Some(value) =
            authorization.filter(|_| self.auth && !self.has_header("authorization"))
        {
            out.extend_from_slice(format!("authorization: {value}\r\n").as_bytes());
        }
        let framed = self.has_header("content-length") || self.has_header("transfer-encoding");
        let has_body =
            !self.body.is_empty() || matches!(self.method.as_str(), "PUT" | "POST" | "PATCH");
        if !framed && has_body {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response: status, headers (names lowercase), body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The OCI error code of an error body, if it is one.
    pub fn oci_code(&self) -> Option<String> {
        let body = self.json()?;
        Some(body["errors"][0]["code"].as_str()?.to_string())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A keep-alive connection to the server, opened when first needed.
pub struct Conn {
    addr: SocketAddr,
    local: Option<IpAddr>,
    stream: Option<TcpStream>,
}

impl Conn {
    pub fn new(addr: SocketAddr, local: Option<IpAddr>) -> Conn {
        Conn {
            addr,
            local,
            stream: None,
        }
    }

    /// Sends `bytes` (one whole request) and reads the answer. A connection the server had
    /// already closed is reopened once, before any of the answer arrived.
    pub async fn exchange(&mut self, bytes: &[u8], head: bool) -> io::Result<Resp> {
        let reused = self.stream.is_some();
        match self.try_exchange(bytes, head).await {
            Err(e) if reused && is_stale(&e) => {
                self.stream = None;
                self.try_exchange(bytes, head).await
            }
            other => other,
        }
    }

    /// Like [`Conn::exchange`], without reopening a connection the server closed.
    pub async fn exchange_once(&mut self, bytes: &[u8], head: bool) -> io::Result<Resp> {
        self.try_exchange(bytes, head).await
    }

    async fn try_exchange(&mut self, bytes: &[u8], head: bool) -> io::Result<Resp> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr, self.local).await?);
        }
        let stream = self.stream.as_mut().expect("connected above");
        // Written and read at once: a server may answer (and close) before a large body is in.
        // Nothing follows a response on a connection used one request at a time, so a reader
        // buffer per exchange loses nothing.
        let (reader, mut writer) = stream.split();
        let mut reader = BufReader::new(reader);
        let write = async {
            let result = writer.write_all(bytes).await;
            let _ = writer.flush().await;
            result
        };
        let read = read_response(&mut reader, head);
        let (written, read) = tokio::join!(write, read);
        let result = match (written, read) {
            (_, Ok((resp, keep))) => {
                if !keep {
                    self.stream = None;
                }
                return Ok(resp);
            }
            (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(e),
        };
        self.stream = None;
        result
    }

    /// Forgets the connection (after a timeout, say).
    pub fn reset(&mut self) {
        self.stream = None;
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// A TCP connection to `addr`, from `local` if given (another loopback address, say).
pub async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(local) = local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads one response (skipping 1xx ones); also says whether the connection may be reused.
pub async fn read_response(
    reader: &mut (impl AsyncBufRead + Unpin),
    head: bool,
) -> io::Result<(Resp, bool)> {
    loop {
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            total += n;
            if total > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if line.is_empty() {
                break;
            }
            lines.push(line);
        }
        let status_line = lines
            .first()
            .ok_or_else(|| invalid("empty response head"))?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|_| status_line.starts_with("HTTP/1."))
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines[1..]
            .iter()
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let mut keep = !resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if head || status == 204 || status == 304 {
        } else if chunked {
            resp.body = read_chunked(reader).await?;
        } else if let Some(length) = resp.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
            if length > MAX_BODY {
                return Err(invalid(format!("response body of {length} bytes")));
            }
            resp.body = vec![0; length];
            reader.read_exact(&mut resp.body).await?;
        } else {
            reader
                .take(MAX_BODY as u64)
                .read_to_end(&mut resp.body)
                .await?;
            keep = false;
        }
        return Ok((resp, keep));
    }
}

async fn read_chunked(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked response body too large"));
        }
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).await? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).await?;
    }
}
