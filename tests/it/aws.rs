//! The AWS provider against a real EC2 API server on loopback (moto): the fleet is seeded
//! through the SDK, then the real binary is asked what it sees.

use std::collections::BTreeMap;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, InstanceType, Placement, ResourceType, Tag,
    TagSpecification,
};
use serde_json::Value;

use crate::emulator::{exclusive, moto};
use crate::sandbox::Sandbox;

const REGION: &str = "us-east-1";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(endpoint: &str) -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    Client::new(&shared)
}

/// An image the emulator knows.
async fn image(ec2: &Client) -> String {
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    images
        .images()
        .iter()
        .find_map(|i| i.image_id().map(String::from))
        .expect("the emulator lists images")
}

async fn launch(ec2: &Client, ami: &str, fleet: &str, name: &str, role: &str, az: &str) -> String {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(name).build())
        .tags(Tag::builder().key("dake:fleet").value(fleet).build())
        .tags(Tag::builder().key("dake:role").value(role).build())
        .build();
    let mut req = ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::C5Large)
        .min_count(1)
        .max_count(1)
        .placement(Placement::builder().availability_zone(az).build())
        .tag_specifications(tags);
    if role == "db-master" {
        req = req.block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvdf")
                .ebs(EbsBlockDevice::builder().volume_size(50).build())
                .build(),
        );
    }
    let out = req.send().await.unwrap();
    out.instances()[0].instance_id().unwrap().to_string()
}

/// The drill's shape on EC2: 4 web servers over two zones, a master, 2 replicas; plus one
/// instance of another fleet that must stay invisible. Returns name → id for the fleet.
async fn seed(ec2: &Client) -> BTreeMap<String, String> {
    let ami = image(ec2).await;
    let mut ids = BTreeMap::new();
    for (name, role, az) in [
        ("web-1", "web", "us-east-1a"),
        ("web-2", "web", "us-east-1b"),
        ("web-3", "web", "us-east-1a"),
        ("web-4", "web", "us-east-1b"),
        ("db-master", "db-master", "us-east-1a"),
        ("db-replica-1", "db-replica", "us-east-1b"),
        ("db-replica-2", "db-replica", "us-east-1a"),
    ] {
        ids.insert(
            name.to_string(),
            launch(ec2, &ami, "drill", name, role, az).await,
        );
    }
    launch(ec2, &ami, "someone-else", "not-ours", "web", "us-east-1a").await;
    ids
}

fn dake_aws(sandbox: &Sandbox, endpoint: &str) -> assert_cmd::Command {
    let mut cmd = sandbox.dake();
    cmd.args([
        "--provider",
        "aws",
        "--endpoint-url",
        endpoint,
        "--region",
        REGION,
    ])
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env_remove("AWS_PROFILE");
    cmd
}

#[test]
fn status_sees_exactly_the_tagged_fleet() {
    let _only = exclusive();
    let server = moto();
    server.reset();
    let ids = runtime().block_on(async { seed(&client(&server.endpoint).await).await });

    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &server.endpoint)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(json["provider"], "aws");
    assert_eq!(json["region"], REGION);
    let instances = json["instances"].as_array().unwrap();
    let seen: BTreeMap<String, String> = instances
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen, ids, "the fleet, and only the fleet");
    let role_of =
        |name: &str| instances.iter().find(|i| i["name"] == name).unwrap()["role"].clone();
    assert_eq!(role_of("web-3"), "web");
    assert_eq!(role_of("db-master"), "db-master");
    assert_eq!(role_of("db-replica-2"), "db-replica");
    let az_of = |name: &str| instances.iter().find(|i| i["name"] == name).unwrap()["az"].clone();
    assert_eq!(az_of("web-2"), "us-east-1b");
    let master = instances.iter().find(|i| i["name"] == "db-master").unwrap();
    assert_eq!(
        master["disposable"], false,
        "the master's data volume is the only copy"
    );
    assert!(
        instances
            .iter()
            .filter(|i| i["role"] == "web")
            .all(|i| i["disposable"] == true)
    );
    assert!(
        instances.iter().all(|i| i["state"] == "running"),
        "{instances:?}"
    );
}

#[test]
fn a_stopped_master_is_flagged_critical() {
    let _only = exclusive();
    let server = moto();
    server.reset();
    runtime().block_on(async {
        let ec2 = client(&server.endpoint).await;
        let ids = seed(&ec2).await;
        ec2.stop_instances()
            .instance_ids(&ids["db-master"])
            .send()
            .await
            .unwrap();
        // The emulator stops at once; make sure before asking dake.
        let filter = Filter::builder()
            .name("instance-state-name")
            .values("stopped")
            .build();
        let stopped = ec2
            .describe_instances()
            .filters(filter)
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.reservations().len(), 1);
    });
    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &server.endpoint)
        .args(["status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.starts_with("DAKE CRITICAL - master DB down: db-master"),
        "{text}"
    );
}

#[test]
fn playbook_actions_are_refused_before_anything_is_done() {
    let _only = exclusive();
    let server = moto();
    server.reset();
    let ids = runtime().block_on(async { seed(&client(&server.endpoint).await).await });
    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &server.endpoint)
        .args(["run", "web-replace", "--target", "web-3", "--yes"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not available on the AWS provider yet; nothing was done"),
        "{err}"
    );
    // Nothing changed in the fleet.
    let states = runtime().block_on(async {
        let ec2 = client(&server.endpoint).await;
        let out = ec2
            .describe_instances()
            .instance_ids(&ids["web-3"])
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str()
            .to_string()
    });
    assert_eq!(states, "running");
}

#[test]
fn no_region_is_unknown_not_a_guess() {
    let _only = exclusive();
    let server = moto();
    let sandbox = Sandbox::new();
    let out = sandbox
        .dake()
        .args([
            "--provider",
            "aws",
            "--endpoint-url",
            &server.endpoint,
            "status",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("no AWS region"), "{text}");
}
