//! One SDK client per service, built once from the standard chain, and the SDK's errors said
//! the way an operator reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use super::AwsOptions;
use crate::config::AwsConfig;
use crate::provider::ProviderError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TIMED_OUT: &str = "the AWS API did not answer in time ([aws] attempt_timeout_secs, \
                         call_timeout_secs)";

pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub region: String,
}

impl Clients {
    /// Credentials, region and endpoints as aws-config finds them (`AWS_ENDPOINT_URL_<SERVICE>`
    /// included), overridden by the command line. Retries are the SDK's standard mode.
    /// Every call is bounded by `[aws] attempt_timeout_secs` per attempt and
    /// `call_timeout_secs` in all, so no step or refresh hangs on one.
    pub async fn load(options: &AwsOptions, aws: &AwsConfig) -> Result<Clients, ProviderError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(aws.call_timeout_secs))
                    .operation_attempt_timeout(Duration::from_secs(aws.attempt_timeout_secs))
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        if let Some(p) = &options.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &options.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let shared = loader.load().await;
        // Guessing a region could act on the wrong fleet: refuse instead.
        let region = shared.region().map(|r| r.to_string()).ok_or_else(|| {
            ProviderError::Other(
                "no AWS region: pass --region or set AWS_REGION (or a region in your profile)"
                    .into(),
            )
        })?;
        // `--endpoint-url` is every service's default; `AWS_ENDPOINT_URL_<SERVICE>` still wins
        // for its own service (one emulator may serve EC2 and another CloudWatch).
        macro_rules! client {
            ($sdk:ident, $env:literal) => {{
                let mut conf = $sdk::config::Builder::from(&shared);
                if let Some(url) = endpoint_override(options, $env) {
                    conf = conf.endpoint_url(url);
                }
                $sdk::Client::from_conf(conf.build())
            }};
        }
        Ok(Clients {
            ec2: client!(aws_sdk_ec2, "EC2"),
            cloudwatch: client!(aws_sdk_cloudwatch, "CLOUDWATCH"),
            elb: client!(aws_sdk_elasticloadbalancingv2, "ELASTIC_LOAD_BALANCING_V2"),
            route53: client!(aws_sdk_route53, "ROUTE_53"),
            ssm: client!(aws_sdk_ssm, "SSM"),
            logs: client!(aws_sdk_cloudwatchlogs, "CLOUDWATCH_LOGS"),
            region,
        })
    }
}

fn endpoint_override(options: &AwsOptions, service: &str) -> Option<String> {
    let own =
        std::env::var_os(format!("AWS_ENDPOINT_URL_{service}")).is_some_and(|v| !v.is_empty());
    if own {
        None
    } else {
        options.endpoint_url.clone()
    }
}

/// API calls by operation, counted as they are sent (every page and every batch counts).
#[derive(Debug, Default, Clone)]
pub struct Calls(BTreeMap<String, u32>);

impl Calls {
    pub fn add(&mut self, operation: &str) {
        *self.0.entry(operation.to_string()).or_default() += 1;
    }

    pub fn into_map(self) -> BTreeMap<String, u32> {
        self.0
    }

    /// Another read's calls, counted here too.
    pub fn absorb(&mut self, other: Calls) {
        for (op, n) in other.0 {
            *self.0.entry(op).or_default() += n;
        }
    }
}

/// Error codes AWS uses when it asks the caller to slow down.
const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
];

/// An error and its causes on one line, each said once ("io error: tcp connect error:
/// Connection refused (os error 111)").
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// The AWS service and operation an SDK error type belongs to, from its path
/// (`aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError`): the error itself
/// does not carry them.
fn service_and_operation<E>() -> (&'static str, String) {
    let path = std::any::type_name::<E>();
    let service = match path.split("::").next().unwrap_or_default() {
        "aws_sdk_ec2" => "EC2",
        "aws_sdk_cloudwatch" => "CloudWatch",
        "aws_sdk_elasticloadbalancingv2" => "ELBv2",
        "aws_sdk_route53" => "Route 53",
        "aws_sdk_ssm" => "SSM",
        _ => "AWS",
    };
    let last = path.rsplit("::").next().unwrap_or_default();
    let operation = last.strip_suffix("Error").unwrap_or(last).to_string();
    (service, operation)
}

/// The HTTP status and request id of the answer, when there was one. The id is where the
/// SDK put it from the body (EC2's `<RequestID>`), else the response header.
fn answer_of(raw: Option<&HttpResponse>, from_body: Option<&str>) -> String {
    let Some(r) = raw else {
        return String::new();
    };
    let in_xml = r
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(xml_request_id);
    let id = from_body
        .or_else(|| {
            ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
                .iter()
                .find_map(|h| r.headers().get(*h))
        })
        .or(in_xml);
    match id {
        Some(id) => format!(" (HTTP {}, request {id})", r.status().as_u16()),
        None => format!(" (HTTP {}, no request id)", r.status().as_u16()),
    }
}

/// The request id an XML error body carries (EC2's `<RequestID>`, the query services'
/// `<RequestId>`), which the SDK does not keep for every service.
fn xml_request_id(body: &str) -> Option<&str> {
    ["RequestID", "RequestId"].iter().find_map(|tag| {
        let (_, rest) = body.split_once(&format!("<{tag}>"))?;
        let (id, _) = rest.split_once(&format!("</{tag}>"))?;
        Some(id.trim()).filter(|id| !id.is_empty())
    })
}

/// Every error names the service and operation, and, when AWS answered, the HTTP status and
/// request id (what a support case asks for). Throttling and timeouts keep their kind so the
/// screen shows them as stale data rather than as a failure; anything else is the service's
/// code and message, or, for an answer the SDK could not read, what it could not read.
pub fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (service, operation) = service_and_operation::<E>();
    let call = format!("{service} {operation}");
    match &e {
        SdkError::TimeoutError(_) => ProviderError::Timeout(format!("{call}: {TIMED_OUT}")),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            ProviderError::Timeout(format!("{call}: {TIMED_OUT}"))
        }
        SdkError::DispatchFailure(d) => ProviderError::Other(match d.as_connector_error() {
            Some(c) => format!("{call}: cannot reach the AWS API: {}", causes(c)),
            None => format!("{call}: cannot reach the AWS API: {d:?}"),
        }),
        _ => {
            let answer = answer_of(e.raw_response(), e.meta().extra("aws_request_id"));
            let Some(code) = e.code() else {
                return ProviderError::Other(format!(
                    "{call}: the answer could not be read: {}{answer}",
                    causes(&e)
                ));
            };
            let message = e.message().unwrap_or("no message");
            let text = format!("{call}: {code}: {message}{answer}");
            if THROTTLING_CODES.contains(&code) {
                ProviderError::Throttled(text)
            } else {
                ProviderError::Other(text)
            }
        }
    }
}

/// The record `name` in `zone`, if it exists: read by every refresh and before a switch.
pub async fn find_record(
    c: &Clients,
    zone: &str,
    name: &str,
    calls: &mut Calls,
) -> Result<Option<aws_sdk_route53::types::ResourceRecordSet>, ProviderError> {
    calls.add("ListResourceRecordSets");
    let out = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .max_items(1)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| same_dns_name(r.name(), name))
        .cloned())
}

fn same_dns_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// An SSM parameter's value, or `None` when there is no such parameter.
pub async fn parameter(
    c: &Clients,
    name: &str,
    calls: &mut Calls,
) -> Result<Option<String>, ProviderError> {
    calls.add("GetParameter");
    match c.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(String::from)),
        Err(e) if error_code(&e) == Some("ParameterNotFound") => Ok(None),
        Err(e) => Err(sdk_error(e)),
    }
}

/// The error code of a failed call, if the service sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_read_from_an_xml_error_body() {
        let ec2 = "<Response><Errors><Error><Code>X</Code></Error></Errors>\
                   <RequestID>0f6c-11</RequestID></Response>";
        assert_eq!(xml_request_id(ec2), Some("0f6c-11"));
        let query = "<ErrorResponse><RequestId> ab-12 </RequestId></ErrorResponse>";
        assert_eq!(xml_request_id(query), Some("ab-12"));
        assert_eq!(xml_request_id("<Response/>"), None);
    }
}
