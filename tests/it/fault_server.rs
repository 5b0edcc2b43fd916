//! A loopback HTTP server that misbehaves the way AWS can: it throttles every request, never
//! answers, or passes requests through to moto except the ones it answers with a recorded AWS
//! response (the emulators allow everything, so an `UnauthorizedOperation` has to be replayed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// EC2's answer to a throttled request (HTTP 503), as AWS sends it.
pub const REQUEST_LIMIT_EXCEEDED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>0f6c0a5e-8c55-4a57-9c0e-2b8d1c8b9a11</RequestID></Response>";

/// EC2's answer (HTTP 403) to a DryRun the caller's policy does not allow, as AWS sends it.
pub const UNAUTHORIZED_TERMINATE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: ec2:TerminateInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/* because no identity-based policy allows the ec2:TerminateInstances action. Encoded authorization failure message: 4kXq1Vb0</Message></Error></Errors><RequestID>5b3d2a8e-63c1-4f0e-9a54-7d1c2e6f8b90</RequestID></Response>";

pub enum Behaviour {
    /// 503 `RequestLimitExceeded` to everything.
    Throttle,
    /// Reads the request and never answers.
    Silent,
    /// Forwards to `upstream`, except requests the rule matches.
    ProxyExcept { upstream: String, rule: Rule },
    /// Forwards everything to `upstream` after `delay`: a link as slow as the internet's (the
    /// benchmark's; no test judges timings).
    #[allow(dead_code)]
    Delayed { upstream: String, delay: Duration },
}

/// Requests whose body contains every one of `when` and none of `unless`.
pub struct Rule {
    pub when: Vec<&'static str>,
    pub unless: Vec<&'static str>,
    pub answer: RuleAnswer,
}

pub enum RuleAnswer {
    /// This HTTP status and body instead of the upstream's.
    Recorded { status: u16, body: &'static str },
    /// Sent on to the upstream, which acts on it, but never answered: the caller dies waiting.
    ForwardThenHang,
    /// This status and body the first `times` times; then passed on to the upstream.
    RecordedFirst {
        status: u16,
        body: &'static str,
        times: std::sync::atomic::AtomicUsize,
    },
}

impl Rule {
    fn matches(&self, body: &str) -> bool {
        self.when.iter().all(|w| body.contains(w)) && !self.unless.iter().any(|u| body.contains(u))
    }
}

pub struct FaultServer {
    pub endpoint: String,
    /// The body of every request received, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl FaultServer {
    pub fn start(behaviour: Behaviour) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(behaviour);
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, log) = (behaviour.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &b, &log));
            }
        });
        FaultServer { endpoint, seen }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// One request: its head (lines, without the final blank one) and its body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn serve(stream: TcpStream, behaviour: &Behaviour, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("cloning the socket"));
    let mut out = stream;
    let Some((head, body)) = read_request(&mut reader) else {
        return;
    };
    let text = String::from_utf8_lossy(&body).to_string();
    log.lock().unwrap().push(text.clone());
    let answer = match behaviour {
        Behaviour::Throttle => respond(503, REQUEST_LIMIT_EXCEEDED),
        Behaviour::Silent => {
            std::thread::sleep(Duration::from_secs(3600));
            return;
        }
        Behaviour::ProxyExcept { upstream, rule } if rule.matches(&text) => match &rule.answer {
            RuleAnswer::Recorded { status, body } => respond(*status, body),
            RuleAnswer::RecordedFirst {
                status,
                body: answer,
                times,
            } => {
                use std::sync::atomic::Ordering;
                let left =
                    times.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                match left {
                    Ok(_) => respond(*status, answer),
                    Err(_) => match forward(upstream, &head, &body) {
                        Some(bytes) => bytes,
                        None => return,
                    },
                }
            }
            RuleAnswer::ForwardThenHang => {
                let _ = forward(upstream, &head, &body);
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
        },
        Behaviour::ProxyExcept { upstream, .. } => match forward(upstream, &head, &body) {
            Some(bytes) => bytes,
            None => return,
        },
        Behaviour::Delayed { upstream, delay } => {
            std::thread::sleep(*delay);
            match forward(upstream, &head, &body) {
                Some(bytes) => bytes,
                None => return,
            }
        }
    };
    // Every answer closes the connection (`Connection: close`): simpler than keeping a proxied
    // one alive, and the SDK opens a new one.
    let _ = out.write_all(&answer);
}

fn respond(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        403 => "Forbidden",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends the request on to `upstream` with `Connection: close` and returns its whole answer.
fn forward(upstream: &str, head: &[String], body: &[u8]) -> Option<Vec<u8>> {
    let addr = upstream.trim_start_matches("http://");
    let mut up = TcpStream::connect(addr).ok()?;
    let mut request = String::new();
    for line in head {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name != "connection" {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    up.write_all(request.as_bytes()).ok()?;
    up.write_all(body).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    Some(answer)
}
