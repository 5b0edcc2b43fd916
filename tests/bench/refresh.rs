//! Section 6: a 1,000-instance refresh on the AWS emulators, with and without a delay in front of
//! every request (as over the internet), against one DescribeInstances page through the same
//! link: the refresh's reads run at once, so it should cost about one page plus a round trip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};

use crate::emulator::{exclusive, ministack, moto};
use crate::fault_server::{Behaviour, FaultServer};

/// The delay added in front of every request: a round trip to a far region.
const LINK_DELAY: Duration = Duration::from_millis(150);
const INSTANCES: i32 = 1000;
const RUNS: usize = 5;
const REGION: &str = "us-east-1";
const FLEET: &str = "big";

fn ec2(endpoint: &str, rt: &tokio::runtime::Runtime) -> aws_sdk_ec2::Client {
    let conf = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::for_tests())
            .load(),
    );
    aws_sdk_ec2::Client::new(&conf)
}

/// A thousand web servers of fleet `big`, launched in one call.
fn seed(ec2: &aws_sdk_ec2::Client, rt: &tokio::runtime::Runtime) -> Result<()> {
    rt.block_on(async {
        let images = ec2.describe_images().owners("amazon").send().await?;
        let ami = images
            .images()
            .iter()
            .find_map(|i| i.image_id())
            .context("the emulator lists no image")?
            .to_string();
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("dake:fleet").value(FLEET).build())
            .tags(Tag::builder().key("dake:role").value("web").build())
            .build();
        ec2.run_instances()
            .image_id(ami)
            .instance_type(InstanceType::C5Large)
            .min_count(INSTANCES)
            .max_count(INSTANCES)
            .tag_specifications(tags)
            .send()
            .await?;
        Ok(())
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One DescribeInstances page of the fleet through `endpoint`, in process.
fn page(endpoint: &str, rt: &tokio::runtime::Runtime) -> Result<Duration> {
    let client = ec2(endpoint, rt);
    let started = Instant::now();
    let out = rt.block_on(
        client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:dake:fleet")
                    .values(FLEET)
                    .build(),
            )
            .max_results(1000)
            .send(),
    )?;
    let took = started.elapsed();
    let n: usize = out.reservations().iter().map(|r| r.instances().len()).sum();
    ensure!(n == INSTANCES as usize, "one page held {n} instances");
    Ok(took)
}

/// `dake status --json` as a whole process, every service through `aws` but CloudWatch,
/// which goes through `cloudwatch`.
fn status(dake: &Path, config: &Path, aws: &str, cloudwatch: &str) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new(dake)
        .args(["--provider", "aws", "--region", REGION, "--config"])
        .arg(config)
        .args(["status", "--json"])
        .env("AWS_ENDPOINT_URL", aws)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .output()?;
    let took = started.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "status printed no JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let n = json["instances"].as_array().map_or(0, Vec::len);
    ensure!(
        n == INSTANCES as usize,
        "status listed {n} instances: {json}"
    );
    Ok(took)
}

pub fn refresh() -> Result<()> {
    let _only_user = exclusive();
    let (moto, ministack) = (moto(), ministack());
    moto.reset();
    ministack.reset();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    seed(&ec2(&moto.endpoint, &rt), &rt)?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("big.toml");
    std::fs::write(
        &config,
        format!(
            "[fleet]\nname = \"{FLEET}\"\nregion = \"{REGION}\"\ntarget_group = \"\"\n\
             [aws]\nattempt_timeout_secs = 60\ncall_timeout_secs = 60\n"
        ),
    )?;
    let dake = crate::dake_binary()?;
    let slow_aws = FaultServer::start(Behaviour::Delayed {
        upstream: moto.endpoint.clone(),
        delay: LINK_DELAY,
    });
    let slow_cw = FaultServer::start(Behaviour::Delayed {
        upstream: ministack.endpoint.clone(),
        delay: LINK_DELAY,
    });
    for (label, aws, cw) in [
        (
            "direct",
            moto.endpoint.as_str(),
            ministack.endpoint.as_str(),
        ),
        (
            "+150 ms a request",
            slow_aws.endpoint.as_str(),
            slow_cw.endpoint.as_str(),
        ),
    ] {
        let mut pages = Vec::new();
        let mut refreshes = Vec::new();
        for _ in 0..RUNS {
            pages.push(page(aws, &rt)?);
            refreshes.push(status(&dake, &config, aws, cw)?);
        }
        let (p, r) = (median(pages), median(refreshes));
        println!(
            "  {label}: `status --json` {:.2} s whole-process median of {RUNS}; one \
             DescribeInstances page {:.2} s; ratio {:.2}",
            r.as_secs_f64(),
            p.as_secs_f64(),
            r.as_secs_f64() / p.as_secs_f64()
        );
    }
    Ok(())
}
