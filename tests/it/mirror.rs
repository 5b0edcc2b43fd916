//! The journal's mirror when CloudWatch Logs misbehaves: a throttled PutLogEvents is sent again
//! without losing or repeating a record, and an endpoint that never answers holds up no step.

use std::sync::atomic::AtomicUsize;

use crate::aws_fleet::Aws;
use crate::emulator::moto;
use crate::fault_server::{Behaviour, FaultServer, Rule, RuleAnswer};
use crate::sandbox::Sandbox;

const THROTTLED: &str = "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}";

/// `dake run` on the drill fleet with its journal mirrored to `logs` (a log group of its own).
fn mirrored_run(sb: &Sandbox, logs: &str, group: &str) -> std::process::Output {
    let config = sb.write(
        "mirror.toml",
        &format!(
            "[journal]\nmirror = \"cloudwatch-logs\"\nlog_group_prefix = \"{group}\"\n\
             [aws]\nattempt_timeout_secs = 2\ncall_timeout_secs = 4\n"
        ),
    );
    sb.dake()
        .arg("--config")
        .arg(config)
        .args(["--region", crate::aws_fleet::REGION])
        .args([
            "run",
            "web-replace",
            "--target",
            "web-3",
            "--inject",
            "slow-web",
        ])
        .args(["--yes", "--speed", "200"])
        .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", logs)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .timeout(std::time::Duration::from_secs(180))
        .output()
        .unwrap()
}

#[test]
fn a_throttled_mirror_sends_every_record_once_in_order() {
    let proxy = FaultServer::start(Behaviour::ProxyExcept {
        upstream: moto().endpoint.clone(),
        rule: Rule {
            when: vec!["logEvents"],
            unless: vec![],
            answer: RuleAnswer::RecordedFirst {
                status: 400,
                body: THROTTLED,
                times: AtomicUsize::new(4),
            },
        },
    });
    let sb = Sandbox::new();
    let out = mirrored_run(&sb, &proxy.endpoint, "/dake-throttled/");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = &sb.journals()[0];
    let local = std::fs::read_to_string(journal).unwrap();
    let run_id = journal.file_stem().unwrap().to_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let aws = rt.block_on(Aws::connect());
    let events = rt.block_on(async {
        aws.logs
            .get_log_events()
            .log_group_name("/dake-throttled/drill")
            .log_stream_name(&run_id)
            .start_from_head(true)
            .send()
            .await
            .unwrap()
    });
    let sent: Vec<&str> = events
        .events()
        .iter()
        .map(|e| e.message().unwrap())
        .collect();
    assert_eq!(sent, local.lines().collect::<Vec<_>>());
    let throttled = proxy
        .seen()
        .iter()
        .filter(|b| b.contains("logEvents"))
        .count();
    assert!(
        throttled > 4,
        "the throttled calls were sent again ({throttled} in all)"
    );
}

#[test]
fn a_mirror_that_never_answers_holds_up_no_step_and_says_what_it_did_not_send() {
    let silent = FaultServer::start(Behaviour::Silent);
    let sb = Sandbox::new();
    let out = mirrored_run(&sb, &silent.endpoint, "/dake-silent/");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the run finished whatever the mirror did: {err}"
    );
    let records = dake::runbook::journal::read(&sb.journals()[0]).unwrap();
    assert!(
        matches!(
            records.last(),
            Some(dake::runbook::record::Record::Finished { .. })
        ),
        "{records:#?}"
    );
    assert!(
        err.contains(&format!(
            "journal mirror: {} of {} journal records not sent",
            records.len(),
            records.len()
        )),
        "{err}"
    );
    assert!(
        err.contains("the journal on this machine has them all"),
        "{err}"
    );
}

#[test]
fn following_a_fleet_whose_mirror_has_no_run_yet_waits_for_one() {
    use std::io::BufRead;
    let sb = Sandbox::new();
    let config = sb.write(
        "mirror.toml",
        "[journal]\nmirror = \"cloudwatch-logs\"\nlog_group_prefix = \"/dake-none-yet/\"\n",
    );
    let mut follower = sb
        .dake_process()
        .arg("--config")
        .arg(config)
        .args([
            "--provider",
            "aws",
            "--region",
            crate::aws_fleet::REGION,
            "follow",
        ])
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(follower.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(
        first.trim_end(),
        "waiting for a run to start in CloudWatch Logs group /dake-none-yet/drill"
    );
}
