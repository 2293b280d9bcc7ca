//! A loopback stand-in of ECS's JSON protocol for `DescribeServices` (moto
//! does not advance deployments, so it cannot roll back). Every response it
//! serves is first checked against botocore's own ECS model (the installed
//! botocore's `ecs/2014-11-13/service-2.json`, the one the AWS CLI parses
//! with): a member the model lacks, a wrong type or an unknown enum value is
//! recorded, answered with a 500, and fails [`EcsStandIn::requests`].

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113.DescribeServices";

/// botocore's service model: the parts a response shape needs.
#[derive(Debug, Deserialize)]
pub struct Model {
    operations: BTreeMap<String, Operation>,
    shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    output: Option<ShapeRef>,
}

#[derive(Debug, Deserialize)]
struct ShapeRef {
    shape: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Shape {
    Structure {
        #[serde(default)]
        members: BTreeMap<String, ShapeRef>,
    },
    List {
        member: ShapeRef,
    },
    Map {
        value: ShapeRef,
    },
    String {
        #[serde(default, rename = "enum")]
        values: Vec<String>,
    },
    Integer,
    Long,
    Double,
    Float,
    Boolean,
    // The JSON protocol sends timestamps as epoch seconds.
    Timestamp,
    #[serde(other)]
    Unsupported,
}

impl Model {
    /// The installed botocore's ECS model, loaded by its own loader (the
    /// file is gzipped in recent releases).
    pub fn ecs() -> Self {
        let python = crate::machine::python_with_moto()
            .expect("python3 with moto (and so botocore) is needed for the ECS model");
        let output = std::process::Command::new(python)
            .args([
                "-c",
                "import json, botocore.loaders as l; print(json.dumps(l.Loader().load_service_model('ecs', 'service-2')))",
            ])
            .output()
            .expect("python3");
        assert!(
            output.status.success(),
            "botocore's ECS model: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("botocore's model")
    }

    /// Where `value` breaks the output shape of `operation`.
    pub fn violations(&self, operation: &str, value: &Value) -> Vec<String> {
        let output = self.operations[operation]
            .output
            .as_ref()
            .expect("the operation has an output");
        let mut found = Vec::new();
        self.check(&output.shape, value, "$", &mut found);
        found
    }

    fn check(&self, shape: &str, value: &Value, path: &str, found: &mut Vec<String>) {
        let ok = match (&self.shapes[shape], value) {
            (Shape::Structure { members }, Value::Object(fields)) => {
                for (name, field) in fields {
                    match members.get(name) {
                        Some(member) => {
                            self.check(&member.shape, field, &format!("{path}.{name}"), found)
                        }
                        None => found.push(format!("{path}.{name}: not a member of {shape}")),
                    }
                }
                true
            }
            (Shape::List { member }, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.check(&member.shape, item, &format!("{path}[{i}]"), found);
                }
                true
            }
            (Shape::Map { value: inner }, Value::Object(fields)) => {
                for (key, field) in fields {
                    self.check(&inner.shape, field, &format!("{path}.{key}"), found);
                }
                true
            }
            (Shape::String { values }, Value::String(s)) => values.is_empty() || values.contains(s),
            (Shape::Integer | Shape::Long, Value::Number(n)) => n.is_i64(),
            (Shape::Double | Shape::Float | Shape::Timestamp, Value::Number(_)) => true,
            (Shape::Boolean, Value::Bool(_)) => true,
            _ => false,
        };
        if !ok {
            found.push(format!("{path}: {value} is not a {shape}"));
        }
    }
}

/// A `DescribeServices` request body.
#[derive(Debug, Clone, Deserialize)]
pub struct DescribeServices {
    pub cluster: Option<String>,
    pub services: Vec<String>,
}

type Respond = dyn Fn(usize, &DescribeServices) -> Value + Send + Sync;

#[derive(Default)]
struct Log {
    requests: Vec<DescribeServices>,
    violations: Vec<String>,
}

/// The stand-in on a free loopback port; its thread ends with the process.
pub struct EcsStandIn {
    pub endpoint: String,
    log: Arc<Mutex<Log>>,
}

impl EcsStandIn {
    /// Serves `respond(call number, request)` to every DescribeServices call.
    pub fn start(
        respond: impl Fn(usize, &DescribeServices) -> Value + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let log = Arc::new(Mutex::new(Log::default()));
        let model = Arc::new(Model::ecs());
        let respond: Arc<Respond> = Arc::new(respond);
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, model, respond) = (
                    Arc::clone(&shared),
                    Arc::clone(&model),
                    Arc::clone(&respond),
                );
                std::thread::spawn(move || serve(stream, &log, &model, &*respond));
            }
        });
        Self { endpoint, log }
    }

    /// The requests served so far; panics if any response broke the model
    /// or any request was not a DescribeServices call.
    pub fn requests(&self) -> Vec<DescribeServices> {
        let log = self.log.lock().expect("log");
        assert!(
            log.violations.is_empty(),
            "the ECS stand-in left botocore's model or protocol: {:#?}",
            log.violations
        );
        log.requests.clone()
    }
}

/// Answers the requests of one (keep-alive) connection.
fn serve(stream: TcpStream, log: &Mutex<Log>, model: &Model, respond: &Respond) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut headers = BTreeMap::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let post = line.starts_with("POST ");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = answer(post, &headers, &body, log, model, respond);
        let text = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(
    post: bool,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    log: &Mutex<Log>,
    model: &Model,
    respond: &Respond,
) -> (&'static str, Value) {
    let mut log = log.lock().expect("log");
    let target = headers.get("x-amz-target").map(String::as_str);
    if !post || target != Some(TARGET) {
        log.violations.push(format!(
            "not a DescribeServices call: POST {post}, target {target:?}"
        ));
        return (
            "400 Bad Request",
            serde_json::json!({"__type": "UnknownOperationException"}),
        );
    }
    let request: DescribeServices = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            log.violations.push(format!("request body: {e}"));
            return (
                "400 Bad Request",
                serde_json::json!({"__type": "InvalidParameterException"}),
            );
        }
    };
    let response = respond(log.requests.len(), &request);
    log.requests.push(request);
    let violations = model.violations("DescribeServices", &response);
    if violations.is_empty() {
        ("200 OK", response)
    } else {
        log.violations.extend(violations);
        (
            "500 Internal Server Error",
            serde_json::json!({"__type": "ServerException"}),
        )
    }
}
