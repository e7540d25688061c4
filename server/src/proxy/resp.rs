//! A minimal Redis client: RESP2 over TCP, enough for the shared rate limits (`AUTH`, `SELECT`,
//! `SCRIPT LOAD`, `EVALSHA`). Replies are read with bounded sizes, so a misbehaving server is an
//! error, never a panic or an unbounded allocation.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest bulk string accepted in a reply.
const MAX_BULK_BYTES: usize = 1 << 20;
/// The most elements accepted in one reply array.
const MAX_ARRAY_LEN: usize = 4096;
/// The deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 4;

/// Where the Redis server is: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub address: String,
    /// `AUTH` credentials: an optional user name and the password.
    pub auth: Option<(Option<String>, String)>,
    /// The database to `SELECT`.
    pub database: u32,
}

impl Target {
    /// Parses a `redis://` URL. `rediss://` (TLS) is not supported. The user name and password
    /// may be percent-encoded; error messages never show them.
    pub fn parse(url: &str) -> Result<Target, String> {
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err(format!(
                "`{}` is not a `redis://host:port[/db]` URL (TLS, `rediss://`, is not supported)",
                redacted(url)
            ));
        };
        let (credentials, location) = match rest.rsplit_once('@') {
            Some((credentials, location)) => (Some(credentials), location),
            None => (None, rest),
        };
        let (host, database) = match location.split_once('/') {
            Some((host, "")) => (host, 0),
            Some((host, database)) => (
                host,
                database
                    .parse()
                    .map_err(|_| format!("`{}`: the database must be a number", redacted(url)))?,
            ),
            None => (location, 0),
        };
        let auth = credentials.map(|credentials| {
            let (user, password) = match credentials.split_once(':') {
                Some(("", password)) => (None, password),
                Some((user, password)) => (Some(percent_decoded(user)), password),
                None => (None, credentials),
            };
            (user, percent_decoded(password))
        });
        if host.is_empty() {
            return Err(format!("`{}` names no host", redacted(url)));
        }
        let address = if host.rsplit_once(':').is_some_and(|(_, port)| {
            !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
        }) {
            host.to_string()
        } else {
            format!("{host}:6379")
        };
        Ok(Target {
            address,
            auth,
            database,
        })
    }
}

/// A URL with its credentials replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, location)) => format!("{scheme}://***@{location}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `%XX` sequences decoded; anything else as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                index += 3;
            }
            None => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`: the server refused the command.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`, or `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`, or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    /// The connection failed or broke.
    #[error("redis connection: {0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("redis did not answer in time")]
    Timeout,
    /// The server sent something that is not RESP2 within our bounds.
    #[error("redis sent a malformed reply: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("redis refused: {0}")]
    Refused(String),
}

/// One connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    /// Connects, authenticates and selects the database, all within `timeout`.
    pub async fn open(target: &Target, timeout: Duration) -> Result<Connection, RespError> {
        let setup = async {
            let stream = TcpStream::connect(&target.address).await?;
            stream.set_nodelay(true)?;
            let mut connection = Connection {
                stream: BufReader::new(stream),
            };
            if let Some((user, password)) = &target.auth {
                let mut args: Vec<&[u8]> = vec![b"AUTH"];
                if let Some(user) = user {
                    args.push(user.as_bytes());
                }
                args.push(password.as_bytes());
                connection.call(&args).await?.ok()?;
            }
            if target.database != 0 {
                let database = target.database.to_string();
                connection
                    .call(&[b"SELECT", database.as_bytes()])
                    .await?
                    .ok()?;
            }
            Ok(connection)
        };
        tokio::time::timeout(timeout, setup)
            .await
            .map_err(|_| RespError::Timeout)?
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, RespError> {
        let mut message =
            Vec::with_capacity(64 + args.iter().map(|arg| arg.len() + 16).sum::<usize>());
        message.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            message.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            message.extend_from_slice(arg);
            message.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&message).await?;
        self.read_reply(0).await
    }

    fn read_reply(
        &mut self,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RespError>> + Send + '_>>
    {
        Box::pin(async move {
            let line = self.read_line().await?;
            let (kind, rest) = line.split_at_checked(1).unwrap_or(("", ""));
            match kind {
                "+" => Ok(Reply::Status(rest.to_string())),
                "-" => Ok(Reply::Error(rest.to_string())),
                ":" => rest
                    .parse()
                    .map(Reply::Integer)
                    .map_err(|_| RespError::Protocol(format!("bad integer {rest:?}"))),
                "$" => {
                    let Some(length) = length(rest, MAX_BULK_BYTES, "bulk string")? else {
                        return Ok(Reply::Bulk(None));
                    };
                    let mut data = vec![0; length + 2];
                    self.stream.read_exact(&mut data).await?;
                    if data.ends_with(b"\r\n") {
                        data.truncate(length);
                        Ok(Reply::Bulk(Some(data)))
                    } else {
                        Err(RespError::Protocol(
                            "bulk string not terminated".to_string(),
                        ))
                    }
                }
                "*" => {
                    let Some(length) = length(rest, MAX_ARRAY_LEN, "array")? else {
                        return Ok(Reply::Array(None));
                    };
                    if depth >= MAX_DEPTH {
                        return Err(RespError::Protocol("arrays nested too deep".to_string()));
                    }
                    let mut items = Vec::with_capacity(length);
                    for _ in 0..length {
                        items.push(self.read_reply(depth + 1).await?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
                _ => Err(RespError::Protocol(format!("unknown reply {line:?}"))),
            }
        })
    }

    /// One line without its `\r\n`, at most 64 KiB.
    async fn read_line(&mut self) -> Result<String, RespError> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Err(RespError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        if !line.ends_with(b"\r\n") {
            return Err(RespError::Protocol("line not terminated".to_string()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| RespError::Protocol("line not UTF-8".to_string()))
    }
}

/// The length of a bulk string or array: `None` for nil (`-1`), an error above `max`.
fn length(text: &str, max: usize, what: &str) -> Result<Option<usize>, RespError> {
    let length: i64 = text
        .parse()
        .map_err(|_| RespError::Protocol(format!("bad {what} length {text:?}")))?;
    if length < 0 {
        return Ok(None);
    }
    usize::try_from(length)
        .ok()
        .filter(|length| *length <= max)
        .map(Some)
        .ok_or_else(|| RespError::Protocol(format!("{what} too long")))
}

impl Reply {
    /// `Ok(self)` unless the server refused.
    pub fn ok(self) -> Result<Reply, RespError> {
        match self {
            Reply::Error(message) => Err(RespError::Refused(message)),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply a server that answers `canned` to any command gets parsed into.
    async fn reply_to(canned: &'static [u8]) -> Result<Reply, RespError> {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 64];
            let _ = socket.read(&mut command).await;
            socket.write_all(canned).await.unwrap();
        });
        let stream = TcpStream::connect(address).await.unwrap();
        let mut connection = Connection {
            stream: BufReader::new(stream),
        };
        connection.call(&[b"PING"]).await
    }

    #[tokio::test]
    async fn replies_are_read_within_bounds_and_bad_ones_are_errors() {
        assert_eq!(
            reply_to(b"*3\r\n:1\r\n$3\r\nabc\r\n$-1\r\n").await.unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Bulk(Some(b"abc".to_vec())),
                Reply::Bulk(None)
            ]))
        );
        assert_eq!(
            reply_to(b"-NOSCRIPT no such script\r\n").await.unwrap(),
            Reply::Error("NOSCRIPT no such script".to_string())
        );
        for bad in [
            &b"$99999999\r\n"[..],
            b"*5000\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"?what\r\n",
            b":12x\r\n",
            b"$3\r\nabcde",
            b"+OK",
        ] {
            assert!(reply_to(bad).await.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_name_host_port_credentials_and_database() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6380/2").unwrap(),
            Target {
                address: "127.0.0.1:6380".to_string(),
                auth: None,
                database: 2
            }
        );
        assert_eq!(
            Target::parse("redis://:secret@cache").unwrap(),
            Target {
                address: "cache:6379".to_string(),
                auth: Some((None, "secret".to_string())),
                database: 0
            }
        );
        assert_eq!(
            Target::parse("redis://limits:pw@cache:7000/").unwrap().auth,
            Some((Some("limits".to_string()), "pw".to_string()))
        );
        for bad in [
            "rediss://cache",
            "http://cache",
            "redis://",
            "redis://cache/x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Target::parse("redis://:p%40ss%2Fw@cache:7000/1").unwrap(),
            Target {
                address: "cache:7000".to_string(),
                auth: Some((None, "p@ss/w".to_string())),
                database: 1
            }
        );
        let error = Target::parse("rediss://user:hunter2@cache").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let error = Target::parse("redis://user:hunter2@cache/x").unwrap_err();
        assert!(
            !error.contains("hunter2") && error.contains("***@cache"),
            "{error}"
        );
    }
}
