//! The AWS provider when things are not fine: a preflight against moto, a permission AWS
//! refuses (a recorded `UnauthorizedOperation` answer in front of moto), an API that throttles
//! and one that never answers. Every effect (or its absence) is read back through the SDK.

use std::time::Instant;

use serde_json::Value;

use crate::aws_fleet::{Emulated, REGION, dake_aws, in_process_provider};
use crate::emulator::moto;
use crate::fault_server::{Behaviour, FaultServer, Rule, RuleAnswer, UNAUTHORIZED_TERMINATE};
use crate::sandbox::{Sandbox, stdout_json};

/// Each call of a preflight report with its verdict, keyed by operation (in plan order).
fn verdicts(report: &Value) -> Vec<(String, String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["calls"].as_array().unwrap())
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn preflight_dry_runs_every_ec2_call_and_changes_nothing() {
    let e = Emulated::seeded();
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let before = rt.block_on(aws.fleet("drill"));
    let targets_before = rt.block_on(aws.targets(&seeded.target_group_arn));

    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &seeded.config())
        .args(["preflight", "web-replace", "--target", "web-3", "--json"])
        .output()
        .unwrap();
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let v = verdicts(&report);
    let verdict_of = |op: &str| {
        v.iter()
            .find(|(o, ..)| o == op)
            .unwrap_or_else(|| panic!("no {op} in {v:#?}"))
            .1
            .clone()
    };
    assert_eq!(verdict_of("RunInstances"), "allowed");
    assert_eq!(verdict_of("TerminateInstances"), "allowed");
    assert_eq!(verdict_of("SendCommand"), "not-checkable");
    assert_eq!(verdict_of("RegisterTargets"), "not-checkable");
    assert_eq!(report["refused"], 0);

    // DryRun only: no instance launched or terminated, the target group as it was.
    assert_eq!(rt.block_on(aws.fleet("drill")), before);
    assert_eq!(
        rt.block_on(aws.targets(&seeded.target_group_arn)),
        targets_before
    );

    // A target outside the fleet is refused before any call.
    let outsider = rt.block_on(aws.fleet("someone-else"));
    let (outsider_id, _) = outsider.iter().next().unwrap();
    let out = dake_aws(&sandbox, &seeded.config())
        .args(["preflight", "web-replace", "--target", outsider_id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only instances tagged dake:fleet=drill"),
        "{err}"
    );
}

/// AWS answers a DryRun the policy does not allow with `UnauthorizedOperation`; the emulators
/// allow everything, so that answer is replayed from a recording by a proxy in front of moto.
#[test]
fn an_unauthorized_operation_is_named_and_nothing_is_done() {
    let e = Emulated::seeded();
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let proxy = FaultServer::start(Behaviour::ProxyExcept {
        upstream: moto().endpoint.clone(),
        rule: Rule {
            when: vec!["Action=TerminateInstances"],
            unless: vec![],
            answer: RuleAnswer::Recorded {
                status: 403,
                body: UNAUTHORIZED_TERMINATE,
            },
        },
    });
    let web3 = seeded.ids["web-3"].clone();

    // The preflight names the refused call and the permission, and checks the others.
    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &seeded.config())
        .env("AWS_ENDPOINT_URL_EC2", &proxy.endpoint)
        .args(["preflight", "web-replace", "--target", "web-3", "--json"])
        .output()
        .unwrap();
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let v = verdicts(&report);
    let (_, verdict, detail) = v.iter().find(|(o, ..)| o == "TerminateInstances").unwrap();
    assert_eq!(verdict, "refused");
    assert!(
        detail.contains("TerminateInstances is not allowed")
            && detail.contains("not authorized to perform: ec2:TerminateInstances")
            && detail.contains("dake iam-policy"),
        "{detail}"
    );
    let (_, verdict, _) = v.iter().find(|(o, ..)| o == "RunInstances").unwrap();
    assert_eq!(
        verdict, "allowed",
        "other calls went through the proxy to moto"
    );

    // The call itself: refused after the dry run, never sent for real.
    use dake::domain::call::ProviderCall;
    use dake::provider::Provider;
    let provider = in_process_provider(seeded, &proxy.endpoint);
    let err = rt
        .block_on(provider.execute(ProviderCall::TerminateInstances {
            instance_id: web3.clone(),
        }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not allowed") && err.contains("nothing was done"),
        "{err}"
    );
    let terminates: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|b| b.contains("Action=TerminateInstances"))
        .collect();
    assert!(
        terminates.iter().all(|b| b.contains("DryRun=true")),
        "{terminates:#?}"
    );
    assert_eq!(rt.block_on(aws.fleet("drill"))[&web3].0, "running");
}

/// `dake status` against `server` for every service: the UNKNOWN report and how long it took.
fn status_against(server: &FaultServer) -> (Value, i32, f64) {
    let sandbox = Sandbox::new();
    let started = Instant::now();
    let out = sandbox
        .dake()
        .args(["--provider", "aws", "--region", REGION, "status", "--json"])
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    (stdout_json(&out), out.status.code().unwrap_or(-1), took)
}

#[test]
fn a_throttling_api_is_retried_then_reported_not_waited_on() {
    let server = FaultServer::start(Behaviour::Throttle);
    let (report, code, took) = status_against(&server);
    assert_eq!(code, 3, "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("throttled") && error.contains("RequestLimitExceeded"),
        "{error}"
    );
    // Which service and call, and what a support case asks for.
    assert!(
        error.contains("EC2 Describe")
            && error.contains("HTTP 503")
            && error.contains("request 0f6c0a5e-8c55-4a57-9c0e-2b8d1c8b9a11"),
        "{error}"
    );
    // The SDK's standard mode: three attempts, backing off in between.
    let attempts = server.seen().len();
    assert_eq!(attempts, 3, "{:#?}", server.seen());
    eprintln!("throttled: {attempts} attempts, answered UNKNOWN after {took:.1} s");
}

#[test]
fn an_api_that_never_answers_times_out_with_the_reason() {
    let server = FaultServer::start(Behaviour::Silent);
    let (report, code, took) = status_against(&server);
    assert_eq!(code, 3, "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
    assert!(!server.seen().is_empty(), "the request reached the server");
    eprintln!("silent API: answered UNKNOWN after {took:.1} s");
}

#[test]
fn an_api_nobody_listens_on_is_said_in_one_readable_line() {
    // Bound but never listening: the kernel refuses every connection to it while this test
    // holds it, and no other test can take the port meanwhile.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any_port.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let sandbox = Sandbox::new();
    let out = sandbox
        .dake()
        .args(["--provider", "aws", "--region", REGION, "status"])
        .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("cannot reach the AWS API") && text.contains("Connection refused"),
        "{text}"
    );
    assert!(!text.contains("ConnectorError {"), "no Debug dump: {text}");
}

#[test]
fn an_answer_the_sdk_cannot_read_is_named_with_its_call_and_status() {
    let e = Emulated::seeded();
    let proxy = FaultServer::start(Behaviour::ProxyExcept {
        upstream: moto().endpoint.clone(),
        rule: Rule {
            when: vec!["Action=DescribeInstances"],
            unless: vec![],
            answer: RuleAnswer::Recorded {
                status: 200,
                body: "<html><body>captive portal</body></html>",
            },
        },
    });
    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &e.seeded.config())
        .env("AWS_ENDPOINT_URL_EC2", &proxy.endpoint)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("EC2 DescribeInstances: the answer could not be read")
            && error.contains("HTTP 200")
            && !error.contains("no message"),
        "{error}"
    );
}

/// `dake status --json` on the seeded fleet with `config`, CloudWatch at `cloudwatch` if given.
fn status_with(config: &str, cloudwatch: Option<&str>) -> (Value, i32) {
    let sandbox = Sandbox::new();
    let mut cmd = dake_aws(&sandbox, config);
    if let Some(endpoint) = cloudwatch {
        cmd.env("AWS_ENDPOINT_URL_CLOUDWATCH", endpoint);
    }
    let out = cmd.args(["status", "--json"]).output().unwrap();
    (stdout_json(&out), out.status.code().unwrap_or(-1))
}

#[test]
fn a_part_that_cannot_be_read_is_named_and_the_rest_is_shown() {
    let e = Emulated::seeded();
    let instances = e.seeded.ids.len();
    // No target group of that name: everything else is read; WARNING for that part only.
    let config = e
        .seeded
        .config()
        .replace("target_group = \"web-tg\"", "target_group = \"no-such-tg\"");
    assert_ne!(config, e.seeded.config(), "the target group's name moved");
    let (report, code) = status_with(&config, None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "warning");
    assert_eq!(
        report["instances"].as_array().unwrap().len(),
        instances,
        "{report:#}"
    );
    let why = report["unread"]["target health"].as_str().unwrap();
    assert!(why.contains("no-such-tg"), "{why}");
    assert_eq!(report["unread"].as_object().unwrap().len(), 1, "{report:#}");
    assert!(report["replication"]["endpoint_target_id"].is_string());

    // CloudWatch answering nothing dake can use: the metrics are missing, so nothing can be
    // called OK (UNKNOWN), but the instances, checks and targets are there.
    let broken = FaultServer::start(Behaviour::Throttle);
    let (report, code) = status_with(&e.seeded.config(), Some(&broken.endpoint));
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(
        report["instances"].as_array().unwrap().len(),
        instances,
        "{report:#}"
    );
    let why = report["unread"]["metrics"].as_str().unwrap();
    assert!(why.contains("CloudWatch GetMetricData"), "{why}");
    assert!(
        report["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["target_health"] == "healthy"),
        "{report:#}"
    );
}

/// SSM answering that the command still runs, forever: dake gives up at the host command's
/// limit, cancels it, and says whether it ran.
const STILL_RUNNING: &str =
    r#"{"CommandId":"c-1","InstanceId":"i-1","Status":"InProgress","StatusDetails":"InProgress"}"#;

#[test]
fn a_host_command_dake_stops_waiting_for_is_cancelled_and_said_so() {
    use dake::domain::call::ProviderCall;
    use dake::provider::Provider;
    let e = Emulated::seeded();
    let proxy = FaultServer::start(Behaviour::ProxyExcept {
        upstream: moto().endpoint.clone(),
        rule: Rule {
            // GetCommandInvocation names one instance; CancelCommand a list of them.
            when: vec!["\"InstanceId\":"],
            unless: vec![],
            answer: RuleAnswer::Recorded {
                status: 200,
                body: STILL_RUNNING,
            },
        },
    });
    let config = e.seeded.config() + "host_command_timeout_secs = 10\n";
    let provider = crate::aws_fleet::in_process_provider_with(&config, &proxy.endpoint);
    let err =
        e.rt.block_on(provider.execute(ProviderCall::RestartApp {
            instance_id: e.seeded.ids["web-3"].clone(),
        }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not finished after 10 s: cancelled") && err.contains("may still run"),
        "{err}"
    );
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|b| b.contains("\"executionTimeout\":[\"10\"]")),
        "the command carried its execution timeout: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|b| b.contains("\"InstanceIds\":[") && !b.contains("\"Parameters\"")),
        "a CancelCommand was sent: {seen:#?}"
    );
}
