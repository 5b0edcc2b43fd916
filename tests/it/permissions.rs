//! `dake iam-policy` and `dake preflight` through the real binary, on the drill fleet. (Against
//! the AWS emulators: aws.rs.)

use serde_json::Value;

use crate::sandbox::Sandbox;

const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fleet.aws.example.toml");
const EXAMPLE_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/iam-policy.example.json"
);

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// The committed example policy is what the binary generates for the example config: a step
/// added to or removed from a playbook changes both, or this fails.
#[test]
fn the_example_iam_policy_is_what_the_playbooks_need() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["iam-policy", "--config", EXAMPLE_CONFIG]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let committed = std::fs::read_to_string(EXAMPLE_POLICY).unwrap();
    assert_eq!(
        text(&out.stdout),
        committed,
        "assets/iam-policy.example.json is out of date: regenerate it with \
         `cargo run -- iam-policy --config assets/fleet.aws.example.toml > assets/iam-policy.example.json`"
    );
    let policy: Value = serde_json::from_str(&committed).unwrap();
    let actions: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    for needed in [
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:StartInstances",
        "ec2:DetachVolume",
        "elasticloadbalancing:RegisterTargets",
        "route53:ChangeResourceRecordSets",
        "ssm:SendCommand",
        "cloudwatch:GetMetricData",
    ] {
        assert!(actions.contains(&needed), "{needed} missing: {actions:?}");
    }
}

/// A user's playbook without the dispose step takes TerminateInstances out of the policy.
#[test]
fn the_policy_follows_the_users_own_playbooks() {
    let sandbox = Sandbox::new();
    let builtin = include_str!("../../assets/runbooks/web-replace.toml");
    let cut = &builtin[..builtin.find("[[step]]\nname = \"dispose\"").unwrap()];
    sandbox.write("config/dake/runbooks/web-replace.toml", cut);
    let out = sandbox.run(&["iam-policy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let policy = text(&out.stdout);
    // db-ebs-move still retires the old master: TerminateInstances goes only when both steps do.
    assert!(policy.contains("ec2:TerminateInstances"), "{policy}");
    let db = include_str!("../../assets/runbooks/db-ebs-move.toml");
    let cut = &db[..db.find("[[step]]\nname = \"retire-old\"").unwrap()];
    sandbox.write("config/dake/runbooks/db-ebs-move.toml", cut);
    let out = sandbox.run(&["iam-policy"]);
    let policy = text(&out.stdout);
    assert!(!policy.contains("ec2:TerminateInstances"), "{policy}");
    assert!(policy.contains("ec2:DetachVolume"), "{policy}");
}

#[test]
fn preflight_of_web_replace_on_the_drill_fleet_checks_every_call() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["preflight", "web-replace", "--target", "web-3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    let ops: Vec<&str> = steps
        .iter()
        .flat_map(|s| s["calls"].as_array().unwrap())
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "SendCommand",
            "RunInstances",
            "RegisterTargets",
            // The tier's lease, once, before the first destructive call.
            "PutParameter",
            "DeregisterTargets",
            "TerminateInstances"
        ]
    );
    assert_eq!(r["allowed"], 6);
    assert_eq!(r["refused"], 0);
    let register = &steps[3]["calls"][0]["detail"];
    assert!(
        register
            .as_str()
            .unwrap()
            .contains("stands in for the instance step 3 launches"),
        "{register}"
    );
}

#[test]
fn preflight_says_what_would_refuse_now_and_still_checks_the_rest() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["preflight", "db-ebs-move", "--target", "db-master"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", text(&out.stderr));
    assert!(
        shown.contains("would refuse now") && shown.contains("nothing to fail over"),
        "{shown}"
    );
    assert!(shown.contains("RebootInstances"), "{shown}");
    assert!(shown.contains("DetachVolume"), "{shown}");
    assert!(shown.contains("switch the endpoint first"), "{shown}");
    assert!(shown.contains(" 0 refused"), "{shown}");

    let wrong = sandbox.run(&["preflight", "db-ebs-move", "--target", "web-1"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("targets a db-master instance"));
}
