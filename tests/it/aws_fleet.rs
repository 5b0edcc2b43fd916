//! A drill-shaped fleet seeded into the AWS API emulators through the real SDK, the metrics its
//! hosts would publish, and the real binary pointed at it. Assertions read the end state back
//! through the SDK here, never through dake.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};

use crate::emulator::{Server, ministack, moto};
use crate::sandbox::Sandbox;

pub const REGION: &str = "us-east-1";
pub const FLEET: &str = "drill";
pub const TARGET_GROUP: &str = "web-tg";
pub const DB_RECORD: &str = "db.drill.internal";
/// Device the master's data volume is attached at.
pub const DATA_DEVICE: &str = "/dev/xvdf";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Both emulators, reset: every test starts from nothing.
pub fn fresh_servers() -> (&'static Server, &'static Server) {
    let (m, c) = (moto(), ministack());
    m.reset();
    c.reset();
    (m, c)
}

/// The emulators for one test, reset and seeded with the drill fleet; other tests wait until
/// it is dropped (the lock goes last).
pub struct Emulated {
    pub rt: tokio::runtime::Runtime,
    pub aws: Aws,
    pub seeded: Seeded,
    /// When the master stopped writing its heartbeat, when `publishing` made it dead.
    pub master_died_at: Option<i64>,
    _only: std::sync::MutexGuard<'static, ()>,
}

impl Emulated {
    pub fn seeded() -> Emulated {
        let only = crate::emulator::exclusive();
        fresh_servers();
        let rt = runtime();
        let aws = rt.block_on(Aws::connect());
        let seeded = rt.block_on(seed(&aws));
        Emulated {
            rt,
            aws,
            seeded,
            master_died_at: None,
            _only: only,
        }
    }

    /// Seeded, with ten minutes of metrics: `slow_web` ten times slower than its peers, the
    /// master silent when `master_down`.
    pub fn publishing(slow_web: Option<&str>, master_down: bool) -> Emulated {
        let mut e = Emulated::seeded();
        e.master_died_at = e.rt.block_on(crate::host_metrics::publish_fleet(
            &e.aws,
            &e.seeded,
            slow_web,
            master_down,
        ));
        e
    }
}

/// Instance id → (state, tags), as EC2 describes them.
pub type FleetView = BTreeMap<String, (String, BTreeMap<String, String>)>;

/// SDK clients for the test's own reads and writes (moto for all but CloudWatch).
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Aws {
    pub async fn connect() -> Aws {
        let shared = |endpoint: &str| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .load()
        };
        let m = shared(&moto().endpoint).await;
        let c = shared(&ministack().endpoint).await;
        Aws {
            ec2: aws_sdk_ec2::Client::new(&m),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&m),
            route53: aws_sdk_route53::Client::new(&m),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&c),
            ssm: aws_sdk_ssm::Client::new(&m),
            logs: aws_sdk_cloudwatchlogs::Client::new(&m),
        }
    }

    /// The instance and device `volume` is attached to.
    pub async fn attachment(&self, volume: &str) -> (String, String) {
        let out = self
            .ec2
            .describe_volumes()
            .volume_ids(volume)
            .send()
            .await
            .unwrap();
        let a = &out.volumes()[0].attachments()[0];
        (
            a.instance_id().unwrap().to_string(),
            a.device().unwrap().to_string(),
        )
    }

    /// Instance id → (state, tags), for every instance of `fleet`.
    pub async fn fleet(&self, fleet: &str) -> FleetView {
        let out = self
            .ec2
            .describe_instances()
            .filters(tag(FLEET_TAG, fleet))
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                let tags = i
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
                    .collect();
                (
                    i.instance_id().unwrap().to_string(),
                    (
                        i.state().unwrap().name().unwrap().as_str().to_string(),
                        tags,
                    ),
                )
            })
            .collect()
    }

    /// Ids registered in the target group.
    pub async fn targets(&self, arn: &str) -> Vec<String> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .target_health_descriptions()
            .iter()
            .map(|d| d.target().unwrap().id().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The DB record's value.
    pub async fn record(&self, zone: &str) -> String {
        let out = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await
            .unwrap();
        out.resource_record_sets()
            .iter()
            .find(|r| r.name().trim_end_matches('.') == DB_RECORD)
            .and_then(|r| r.resource_records().first())
            .map(|r| r.value().to_string())
            .expect("the DB record exists")
    }
}

const FLEET_TAG: &str = "dake:fleet";

pub fn tag(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

pub struct Seeded {
    /// Name → instance id, for the fleet only.
    pub ids: BTreeMap<String, String>,
    pub target_group_arn: String,
    pub zone_id: String,
    pub data_volume: String,
}

impl Seeded {
    /// A config file for this fleet, as an operator would write it.
    pub fn config(&self) -> String {
        format!(
            "[fleet]\nname = \"{FLEET}\"\nregion = \"{REGION}\"\ntarget_group = \"{TARGET_GROUP}\"\n\
             db_endpoint = \"{DB_RECORD}\"\n[aws]\nhosted_zone_id = \"{}\"\n",
            self.zone_id
        )
    }
}

/// An image the emulator knows.
async fn image(ec2: &aws_sdk_ec2::Client) -> String {
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    images
        .images()
        .iter()
        .find_map(|i| i.image_id().map(String::from))
        .expect("the emulator lists images")
}

/// The default subnet of each zone.
async fn subnets(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    let out = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap().to_string(),
                s.subnet_id().unwrap().to_string(),
            )
        })
        .collect()
}

async fn launch(
    aws: &Aws,
    ami: &str,
    subnet: &str,
    fleet: &str,
    name: &str,
    role: &str,
) -> aws_sdk_ec2::types::Instance {
    launch_tagged(aws, ami, subnet, (fleet, name, role), 1)
        .await
        .remove(0)
}

/// `count` instances of `fleet` in `role`, in one RunInstances call (named `<fleet>-<role>`).
pub async fn launch_many(aws: &Aws, fleet: &str, role: &str, count: i32) -> Vec<String> {
    let ami = image(&aws.ec2).await;
    let subnet = subnets(&aws.ec2).await.into_values().next().unwrap();
    let name = format!("{fleet}-{role}");
    launch_tagged(aws, &ami, &subnet, (fleet, &name, role), count)
        .await
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// Instances tagged (fleet, Name, role) at launch, with a user data that names the role.
async fn launch_tagged(
    aws: &Aws,
    ami: &str,
    subnet: &str,
    (fleet, name, role): (&str, &str, &str),
    count: i32,
) -> Vec<aws_sdk_ec2::types::Instance> {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(name).build())
        .tags(Tag::builder().key(FLEET_TAG).value(fleet).build())
        .tags(Tag::builder().key("dake:role").value(role).build())
        .build();
    let out = aws
        .ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::C5Large)
        .subnet_id(subnet)
        .user_data(aws_smithy_types::base64::encode(format!(
            "#!/bin/bash\nrole={role}\n"
        )))
        .min_count(count)
        .max_count(count)
        .tag_specifications(tags)
        .send()
        .await
        .unwrap();
    out.instances().to_vec()
}

/// The drill's shape: 4 web servers over two zones in a target group, a master with a tagged
/// data volume, 2 replicas, a private zone whose CNAME names the master; plus one instance of
/// another fleet that must stay invisible and untouched.
pub async fn seed(aws: &Aws) -> Seeded {
    let ami = image(&aws.ec2).await;
    let subnets = subnets(&aws.ec2).await;
    let subnet = |az: &str| subnets[az].clone();
    let mut ids = BTreeMap::new();
    let mut master = None;
    for (name, role, az) in [
        ("web-1", "web", "us-east-1a"),
        ("web-2", "web", "us-east-1b"),
        ("web-3", "web", "us-east-1a"),
        ("web-4", "web", "us-east-1b"),
        ("db-master", "db-master", "us-east-1a"),
        ("db-replica-1", "db-replica", "us-east-1b"),
        ("db-replica-2", "db-replica", "us-east-1a"),
    ] {
        let i = launch(aws, &ami, &subnet(az), FLEET, name, role).await;
        if role == "db-master" {
            master = Some(i.clone());
        }
        ids.insert(name.to_string(), i.instance_id().unwrap().to_string());
    }
    launch(
        aws,
        &ami,
        &subnet("us-east-1a"),
        "someone-else",
        "not-ours",
        "web",
    )
    .await;
    let master = master.expect("seeded a master");

    let volume = aws
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(50)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .tags(Tag::builder().key(FLEET_TAG).value(FLEET).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let data_volume = volume.volume_id().unwrap().to_string();
    aws.ec2
        .attach_volume()
        .volume_id(&data_volume)
        .instance_id(master.instance_id().unwrap())
        .device(DATA_DEVICE)
        .send()
        .await
        .unwrap();

    let vpc = master.vpc_id().unwrap().to_string();
    let tg = aws
        .elb
        .create_target_group()
        .name(TARGET_GROUP)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    let target_group_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let mut register = aws
        .elb
        .register_targets()
        .target_group_arn(&target_group_arn);
    for name in ["web-1", "web-2", "web-3", "web-4"] {
        register = register.targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(&ids[name])
                .build(),
        );
    }
    register.send().await.unwrap();

    let zone = aws
        .route53
        .create_hosted_zone()
        .name("drill.internal")
        .caller_reference(format!("dake-test-{}", crate::host_metrics::now_secs()))
        .hosted_zone_config(
            aws_sdk_route53::types::HostedZoneConfig::builder()
                .private_zone(true)
                .build(),
        )
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(&vpc)
                .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    upsert_cname(aws, &zone_id, master.private_dns_name().unwrap()).await;

    Seeded {
        ids,
        target_group_arn,
        zone_id,
        data_volume,
    }
}

pub async fn upsert_cname(aws: &Aws, zone: &str, value: &str) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let record = ResourceRecordSet::builder()
        .name(DB_RECORD)
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(record)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// Only a guard against a hung process: a whole playbook run on a loaded machine includes
/// waits on CloudWatch's one-minute datapoints, and a 1,000-instance refresh may take its full
/// bound of three calls' worth.
const PROCESS_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// The real binary on the emulators: moto for every service, ministack for CloudWatch (through
/// the per-service endpoint setting), this fleet's config.
pub fn dake_aws(sandbox: &Sandbox, config: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(dake_aws_process(sandbox, config));
    cmd.timeout(PROCESS_LIMIT);
    cmd
}

/// [`dake_aws`] as a plain process.
pub fn dake_aws_process(sandbox: &Sandbox, config: &str) -> std::process::Command {
    let path = sandbox.write("dake.toml", config);
    let mut cmd = sandbox.dake_process();
    cmd.args(["--provider", "aws", "--region", REGION, "--config"])
        .arg(path)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ENDPOINT_URL_CLOUDWATCH", &ministack().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE");
    cmd
}

/// The AWS provider in this process, every service at `endpoint` but CloudWatch (ministack).
/// Call it holding [`exclusive`](crate::emulator::exclusive).
pub fn in_process_provider(seeded: &Seeded, endpoint: &str) -> dake::provider::aws::AwsProvider {
    in_process_provider_with(&seeded.config(), endpoint)
}

/// [`in_process_provider`] with a config of the test's own.
pub fn in_process_provider_with(config: &str, endpoint: &str) -> dake::provider::aws::AwsProvider {
    use dake::provider::aws::{AwsOptions, AwsProvider};
    let config = dake::config::Config::from_user_toml(config, "test.toml").unwrap();
    // The provider reads credentials from the standard chain, as in production. SAFETY: set
    // while holding the emulator lock, before any SDK client of this test reads them; other
    // tests pass the same values to the processes they start.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", &ministack().endpoint);
    }
    AwsProvider::new(
        &config,
        AwsOptions {
            region: Some(REGION.into()),
            endpoint_url: Some(endpoint.to_string()),
            ..Default::default()
        },
    )
    .unwrap()
}
