//! A loopback stand-in for STS, so an offline plan can read
//! `data.aws_caller_identity` (which names the roles' permissions boundary).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

/// The account [`fake_sts`] answers with (moto's default account too).
pub const FAKE_ACCOUNT: &str = "123456789012";

/// The endpoint of an STS stand-in on loopback that answers every request
/// with `GetCallerIdentity` of [`FAKE_ACCOUNT`], so that an offline plan can
/// read `data.aws_caller_identity`. One per test process, on its own thread.
pub fn fake_sts() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port for fake STS");
        let port = listener.local_addr().expect("fake STS address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || answer_caller_identity(stream));
            }
        });
        format!("http://127.0.0.1:{port}")
    })
}

/// Reads one HTTP request (headers and a `Content-Length` body) and answers
/// with a caller identity, then closes the connection.
fn answer_caller_identity(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let xml = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <GetCallerIdentityResult><Arn>arn:aws:iam::{FAKE_ACCOUNT}:user/infra-tests</Arn>\
         <UserId>AIDAINFRATESTS</UserId><Account>{FAKE_ACCOUNT}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>\
         </ResponseMetadata></GetCallerIdentityResponse>"
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{xml}",
        xml.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}
