//! A tiny SMTP server on 127.0.0.1 that accepts every message and keeps it, for tests to read.
//! Enough of RFC 5321 for lettre: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Received messages, raw (RFC 5322 text).
#[derive(Clone, Default)]
pub struct Mailbox(Arc<Mutex<Vec<String>>>);

impl Mailbox {
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Serves SMTP on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, mailbox: Mailbox) {
    while let Ok((stream, _)) = listener.accept().await {
        let mailbox = mailbox.clone();
        tokio::spawn(async move {
            let _ = session(stream, mailbox).await;
        });
    }
}

/// Binds a sink on `addr` (port 0 for any) and runs it on its own thread and runtime, so the
/// synchronous wasmtime calls of a test can talk to it.
pub fn start(addr: SocketAddr) -> std::io::Result<(SocketAddr, Mailbox, std::thread::JoinHandle<()>)> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let mailbox = Mailbox::default();
    let sink = mailbox.clone();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move { serve(TcpListener::from_std(std_listener).unwrap(), sink).await });
    });
    Ok((local, mailbox, handle))
}

async fn session(stream: TcpStream, mailbox: Mailbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                mailbox.0.lock().unwrap().push(data);
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not here\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
