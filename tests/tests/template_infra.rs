//! What template.yaml promises about the deployed system: the contract's routes, Graviton functions
//! with aliases, least-privilege policies and bounded logs, schedules that cannot lose a run
//! silently, canaries that roll back, and a backup bucket that is private and forgets in 30 days.

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::{
    events_of, functions, intrinsic, one_or_many, policy_statements, referenced_id, resources, template,
    template_routes,
};
use serde_yaml::Value;

/// DESIGN.md section 3, and the function that serves each route.
const CONTRACT: &[(&str, &str, &str)] = &[
    ("GET", "/health", "health"),
    ("GET", "/health/live", "health"),
    ("GET", "/openapi.json", "health"),
    ("GET", "/docs", "health"),
    ("GET", "/docs/{file}", "health"),
    ("POST", "/api/auth/register", "auth"),
    ("POST", "/api/auth/login", "auth"),
    ("POST", "/api/auth/refresh", "auth"),
    ("POST", "/api/auth/logout", "auth"),
    ("GET", "/api/auth/me", "auth"),
    ("GET", "/api/competitions", "matches"),
    ("GET", "/api/teams", "matches"),
    ("GET", "/api/matches", "matches"),
    ("GET", "/api/matches/{id}", "matches"),
    ("POST", "/api/predictions", "predictions"),
    ("GET", "/api/predictions", "predictions"),
    ("GET", "/api/predictions/{id}", "predictions"),
    ("GET", "/api/admin/stats", "admin"),
    ("GET", "/api/admin/users", "admin"),
    ("PATCH", "/api/admin/users/{id}", "admin"),
    ("PATCH", "/api/admin/flags", "admin"),
    ("ANY", "$default", "health"),
];

/// Actions whose resource is always known here: a `*` resource for them is a mistake.
const SCOPED_ACTION_PREFIXES: &[&str] =
    &["secretsmanager:", "s3:", "dynamodb:", "sqs:", "elasticache:", "codedeploy:", "lambda:"];

#[test]
fn every_route_of_the_contract_is_served_by_its_function_and_no_other_route_exists() {
    let routes = template_routes(&template());
    let expected: BTreeMap<(String, String), String> =
        CONTRACT.iter().map(|(m, p, f)| ((m.to_string(), p.to_string()), f.to_string())).collect();
    for ((method, path), function) in &expected {
        assert_eq!(
            routes.get(&(method.clone(), path.clone())),
            Some(function),
            "{method} {path} must be an HttpApi event of the `{function}` function"
        );
    }
    let extra: Vec<_> = routes.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "routes in template.yaml that the contract does not have: {extra:?}");
}

#[test]
fn every_function_is_arm64_with_a_live_alias_and_a_log_group_with_retention() {
    let template = template();
    let all = resources(&template);
    assert_eq!(template["Globals"]["Function"]["Architectures"][0].as_str(), Some("arm64"));
    let fns = functions(&template);
    assert!(
        fns.len() >= 11,
        "health, auth, matches, predictions, admin, ingest, settle, train, backup, probe, migrate"
    );
    for (id, function) in &fns {
        let props = &function["Properties"];
        if let Some(archs) = props["Architectures"].as_sequence() {
            assert_eq!(archs.len(), 1, "{id}: one architecture");
            assert_eq!(archs[0].as_str(), Some("arm64"), "{id} overrides the architecture");
        }
        assert_eq!(props["AutoPublishAlias"].as_str(), Some("live"), "{id}: AutoPublishAlias live");
        let group = referenced_id(&props["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup must !Ref a log group of the template"));
        let group = all.get(&group).unwrap_or_else(|| panic!("{id}: log group {group} is not in the template"));
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}");
        let retention = &group["Properties"]["RetentionInDays"];
        assert!(!retention.is_null(), "{id}: its log group keeps logs forever (no RetentionInDays)");
        assert!(!group["Properties"]["LogGroupName"].is_null(), "{id}: log group without a name");
    }
}

#[test]
fn policies_name_their_resources_and_never_grant_everything() {
    let template = template();
    for (id, function) in functions(&template) {
        let statements = policy_statements(&function);
        assert!(!statements.is_empty(), "{id}: no inline least-privilege statements");
        for statement in statements {
            let actions: Vec<String> =
                one_or_many(&statement["Action"]).iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
            assert!(!actions.is_empty(), "{id}: statement without actions: {statement:?}");
            for action in &actions {
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
            }
            let resources = one_or_many(&statement["Resource"]);
            assert!(!resources.is_empty(), "{id}: statement without a resource: {statement:?}");
            if actions.iter().any(|a| SCOPED_ACTION_PREFIXES.iter().any(|p| a.starts_with(p))) {
                for resource in &resources {
                    assert_ne!(resource.as_str(), Some("*"), "{id}: {actions:?} on every resource");
                }
            }
        }
    }
}

#[test]
fn functions_read_only_the_secrets_and_prefixes_they_need() {
    let template = template();
    let fns = functions(&template);
    let granted = |id: &str, action: &str| -> BTreeSet<String> {
        let function = fns.get(id).unwrap_or_else(|| panic!("{id} missing"));
        policy_statements(function)
            .iter()
            .filter(|s| one_or_many(&s["Action"]).iter().any(|a| a.as_str() == Some(action)))
            .flat_map(|s| one_or_many(&s["Resource"]))
            .map(|r| render(&r))
            .collect()
    };
    // Only auth, matches, predictions and admin verify or sign tokens.
    for id in
        ["HealthFunction", "IngestFunction", "SettleFunction", "TrainFunction", "BackupFunction", "MigrateFunction"]
    {
        assert!(!granted(id, "secretsmanager:GetSecretValue").contains("Ref JwtSigningKey"), "{id} reads the JWT key");
    }
    for id in ["AuthFunction", "MatchesFunction", "PredictionsFunction", "AdminFunction"] {
        assert!(
            granted(id, "secretsmanager:GetSecretValue").contains("Ref JwtSigningKey"),
            "{id} cannot read the JWT key"
        );
    }
    assert_eq!(
        granted("PredictionsFunction", "s3:GetObject"),
        BTreeSet::from(["Sub ${BackupBucket.Arn}/models/*".into()])
    );
    assert_eq!(granted("IngestFunction", "s3:GetObject"), BTreeSet::from(["Sub ${BackupBucket.Arn}/imports/*".into()]));
    assert_eq!(granted("BackupFunction", "s3:PutObject"), BTreeSet::from(["Sub ${BackupBucket.Arn}/backups/*".into()]));
    assert_eq!(granted("TrainFunction", "s3:PutObject"), BTreeSet::from(["Sub ${BackupBucket.Arn}/models/*".into()]));
    assert!(granted("HealthFunction", "s3:GetObject").is_empty(), "health needs no S3");

    // Database logins of least privilege: only migrate reads the master secret.
    let master = "GetAtt DatabaseCluster.MasterUserSecret.SecretArn";
    for (id, function) in &fns {
        let reads = granted(id, "secretsmanager:GetSecretValue");
        let own = match id.as_str() {
            "MigrateFunction" => master,
            "BackupFunction" => "Ref BackupDatabaseSecret",
            _ => "Ref AppDatabaseSecret",
        };
        assert!(reads.contains(own), "{id} cannot read its database secret {own}");
        if id != "MigrateFunction" {
            assert!(!reads.contains(master), "{id} reads the master secret");
        }
        let env = &function["Properties"]["Environment"]["Variables"]["DATABASE_SECRET_ARN"];
        let global = &template["Globals"]["Function"]["Environment"]["Variables"]["DATABASE_SECRET_ARN"];
        let configured = render(if env.is_null() { global } else { env });
        assert_eq!(configured, own, "{id} connects with another login than the one it may read");
    }
}

#[test]
fn every_schedule_retries_and_has_a_dead_letter_queue_and_jobs_never_overlap() {
    let template = template();
    let all = resources(&template);
    let mut schedules = 0;
    for (id, function) in functions(&template) {
        let events = events_of(&function, &["ScheduleV2", "Schedule"]);
        for (name, event) in &events {
            schedules += 1;
            assert_eq!(event["Type"].as_str(), Some("ScheduleV2"), "{id}.{name}: EventBridge Scheduler (ScheduleV2)");
            let props = &event["Properties"];
            let dlq = referenced_id(&props["DeadLetterConfig"]["Arn"])
                .unwrap_or_else(|| panic!("{id}.{name}: no DeadLetterConfig.Arn"));
            assert_eq!(all[&dlq]["Type"].as_str(), Some("AWS::SQS::Queue"), "{id}.{name}: DLQ {dlq} is not a queue");
            assert!(
                props["RetryPolicy"]["MaximumRetryAttempts"].as_u64().is_some_and(|n| n >= 1),
                "{id}.{name}: retries"
            );
            assert!(props["ScheduleExpression"].as_str().is_some(), "{id}.{name}: expression");
        }
        if !events.is_empty() {
            assert_eq!(
                function["Properties"]["ReservedConcurrentExecutions"].as_u64(),
                Some(1),
                "{id}: a scheduled job must not run twice at the same time"
            );
            let on_failure = &function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
            assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{id}: a failed run must land in the DLQ");
        }
        // The jobs that run under shared::jobs take a lease lock in the DynamoDB table.
        if ["IngestFunction", "SettleFunction", "TrainFunction", "BackupFunction"].contains(&id.as_str()) {
            for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"] {
                let on_state_table = policy_statements(&function).iter().any(|s| {
                    one_or_many(&s["Action"]).iter().any(|a| a.as_str() == Some(action))
                        && one_or_many(&s["Resource"]).iter().any(|r| render(r).contains("StateTable"))
                });
                assert!(on_state_table, "{id}: the job lock needs {action} on StateTable");
            }
        }
    }
    assert!(schedules >= 7, "ingest x2, settle, train, backup, restore drill, probe: found {schedules}");
}

#[test]
fn the_backup_drill_runs_on_its_own_schedule() {
    let template = template();
    let backup = &functions(&template)["BackupFunction"];
    let inputs: Vec<String> = events_of(backup, &["ScheduleV2"])
        .iter()
        .filter_map(|(_, e)| e["Properties"]["Input"].as_str().map(str::to_string))
        .collect();
    let modes: BTreeSet<String> = inputs
        .iter()
        .map(|i| serde_json::from_str::<serde_json::Value>(i).expect("schedule Input is JSON"))
        .filter_map(|v| v["mode"].as_str().map(str::to_string))
        .collect();
    // `{}` is a backup (the default mode), `{"mode":"verify"}` the restore drill.
    assert_eq!(inputs.len(), 2, "a backup schedule and a drill schedule");
    assert_eq!(modes, BTreeSet::from(["verify".to_string()]));
}

#[test]
fn every_api_function_deploys_as_a_canary_that_alarms_roll_back_after_migrations() {
    let template = template();
    let all = resources(&template);
    let routes = template_routes(&template);
    let api_functions: BTreeSet<&String> = routes.values().collect();
    for (id, function) in functions(&template) {
        let name = integration_tests::function_name(&function).unwrap_or_default();
        let preference = &function["Properties"]["DeploymentPreference"];
        if !api_functions.contains(&name) {
            assert!(preference.is_null(), "{id}: jobs take no traffic, so no canary");
            continue;
        }
        assert_eq!(referenced_id(&preference["Type"]).as_deref(), Some("DeploymentType"), "{id}: canary type");
        assert_eq!(
            referenced_id(&preference["Hooks"]["PreTraffic"]).as_deref(),
            Some("MigrateFunction"),
            "{id}: migrations run before traffic shifts"
        );
        let alarms = preference["Alarms"].as_sequence().unwrap_or_else(|| panic!("{id}: no rollback alarms"));
        assert!(!alarms.is_empty(), "{id}: no rollback alarms");
        for alarm in alarms {
            let alarm = referenced_id(alarm).unwrap_or_else(|| panic!("{id}: alarm must be !Ref"));
            assert_eq!(all[&alarm]["Type"].as_str(), Some("AWS::CloudWatch::Alarm"), "{id}: {alarm}");
        }
    }
    let parameter = &template["Parameters"]["DeploymentType"];
    assert_eq!(parameter["Default"].as_str(), Some("Canary10Percent5Minutes"));
    let migrate = &functions(&template)["MigrateFunction"];
    assert!(
        render(&migrate["Properties"]["FunctionName"]).contains("CodeDeployHook_"),
        "SAM's CodeDeploy role may only invoke hooks named CodeDeployHook_*"
    );
}

#[test]
fn the_backup_bucket_is_private_tls_only_and_forgets_backups_after_30_days() {
    let template = template();
    let all = resources(&template);
    let bucket = &all["BackupBucket"]["Properties"];
    for flag in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(bucket["PublicAccessBlockConfiguration"][flag].as_bool(), Some(true), "{flag}");
    }
    assert_eq!(bucket["VersioningConfiguration"]["Status"].as_str(), Some("Enabled"));
    assert!(!bucket["BucketEncryption"].is_null(), "encrypted");
    let rules = bucket["LifecycleConfiguration"]["Rules"].as_sequence().expect("lifecycle rules");
    assert!(
        rules.iter().any(|r| r["Status"].as_str() == Some("Enabled")
            && r["ExpirationInDays"].as_u64() == Some(30)
            && r["Prefix"].as_str() == Some("backups/")),
        "backups expire after 30 days"
    );
    let policy = all
        .values()
        .find(|r| {
            r["Type"].as_str() == Some("AWS::S3::BucketPolicy")
                && referenced_id(&r["Properties"]["Bucket"]).as_deref() == Some("BackupBucket")
        })
        .expect("a bucket policy");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().expect("statements");
    assert!(statements.iter().any(|s| s["Effect"].as_str() == Some("Deny")
        && s["Condition"]["Bool"]["aws:SecureTransport"].as_bool() == Some(false)));
}

#[test]
fn the_data_stores_are_encrypted_backed_up_and_protected_in_prod() {
    let template = template();
    let all = resources(&template);
    let db = &all["DatabaseCluster"];
    assert_eq!(db["Properties"]["Engine"].as_str(), Some("aurora-postgresql"));
    assert_eq!(db["Properties"]["StorageEncrypted"].as_bool(), Some(true));
    assert_eq!(db["Properties"]["ManageMasterUserPassword"].as_bool(), Some(true));
    assert_eq!(db["Properties"]["BackupRetentionPeriod"].as_u64(), Some(30));
    assert!(!db["Properties"]["ServerlessV2ScalingConfiguration"].is_null(), "Serverless v2");
    let (tag, args) =
        intrinsic(&db["Properties"]["DeletionProtection"]).expect("DeletionProtection: !If [IsProd, ...]");
    assert_eq!((tag.as_str(), args[0].as_str()), ("If", Some("IsProd")));
    assert_eq!(db["DeletionPolicy"].as_str(), Some("Snapshot"));
    let proxy = &all["DatabaseProxy"]["Properties"];
    assert_eq!(proxy["RequireTLS"].as_bool(), Some(true));
    let cache = &all["CacheReplicationGroup"]["Properties"];
    assert_eq!(cache["TransitEncryptionEnabled"].as_bool(), Some(true));
    assert_eq!(cache["AtRestEncryptionEnabled"].as_bool(), Some(true));
    let table = &all["StateTable"]["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"].as_str(), Some("expires_at"));
    // The functions reach S3, DynamoDB and Secrets Manager without the internet.
    let endpoints: BTreeSet<String> = all
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::EC2::VPCEndpoint"))
        .map(|r| render(&r["Properties"]["ServiceName"]))
        .collect();
    for service in ["s3", "dynamodb", "secretsmanager"] {
        assert!(endpoints.iter().any(|e| e.ends_with(&format!(".{service}"))), "no VPC endpoint for {service}");
    }
}

#[test]
fn the_alarms_watch_what_the_old_prometheus_rules_watched_and_notify_the_topic() {
    let template = template();
    let all = resources(&template);
    let alarms: Vec<&Value> = all.values().filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")).collect();
    let text: Vec<String> = alarms.iter().map(|a| format!("{:?}", a["Properties"])).collect();
    for needle in [
        "5xx",
        "Latency",
        "Errors",
        "Throttles",
        "database_errors_total",
        "cache_errors_total",
        "probe_success",
        "backup_success",
        "backup_verify_success",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(text.iter().any(|t| t.contains(needle)), "no alarm on {needle}");
    }
    let five_xx = &all["Api5xxAlarm"]["Properties"];
    // More than 0.1 per second for 5 minutes: more than 6 per minute, five minutes in a row.
    assert_eq!(five_xx["Period"].as_u64(), Some(60));
    assert_eq!(five_xx["Threshold"].as_f64(), Some(6.0));
    assert_eq!(five_xx["EvaluationPeriods"].as_u64(), Some(5));
    for id in ["BackupMissingAlarm", "RestoreDrillMissingAlarm"] {
        let p = &all[id]["Properties"];
        let window = p["Period"].as_u64().unwrap_or(0) * p["EvaluationPeriods"].as_u64().unwrap_or(0);
        assert_eq!(window, 26 * 3600, "{id}: 26 hours");
        assert_eq!(p["TreatMissingData"].as_str(), Some("breaching"), "{id}: silence is a failure");
    }
    for (id, alarm) in all.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")) {
        if id == "ApiCanary5xxAlarm" {
            continue; // a deploy-time trigger: it rolls back, Api5xxAlarm pages
        }
        let actions = alarm["Properties"]["AlarmActions"].as_sequence().unwrap_or_else(|| panic!("{id}: no actions"));
        assert!(
            actions.iter().any(|a| referenced_id(a).as_deref() == Some("AlarmTopic")),
            "{id}: not sent to the topic"
        );
    }
    let dashboard = render(&all["Dashboard"]["Properties"]["DashboardBody"]);
    for metric in ["predictions_total", "prediction_rps", "Latency", "5xx", "Errors"] {
        assert!(dashboard.contains(metric), "dashboard lacks {metric}");
    }
}

/// A scalar or a short-form intrinsic as text: `!Ref X` -> `Ref X`, `!Sub s` -> `Sub s`.
fn render(value: &Value) -> String {
    match intrinsic(value) {
        Some((tag, arg)) => format!("{tag} {}", render(arg)),
        None => match value {
            Value::String(s) => s.clone(),
            Value::Sequence(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
            other => format!("{other:?}"),
        },
    }
}

/// The environment a function of the template starts with (Globals merged with its own variables),
/// as `shared::config::Config` reads it: `!Ref` of a parameter is the parameter's value from
/// `parameters` or its default, every other intrinsic a placeholder (`!Sub` keeps its text with
/// `${...}` replaced by `x`, so `!Sub rediss://${A}:${B}` is `rediss://x:x`).
fn function_env(template: &Value, id: &str, parameters: &BTreeMap<&str, &str>) -> BTreeMap<String, String> {
    let function = &functions(template)[id];
    let mut env = BTreeMap::new();
    for vars in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        for (name, value) in vars.as_mapping().into_iter().flatten() {
            let name = name.as_str().expect("variable name").to_string();
            let value = match intrinsic(value) {
                Some((tag, arg)) if tag == "Ref" => {
                    let target = arg.as_str().expect("Ref target");
                    match parameters.get(target) {
                        Some(v) => v.to_string(),
                        None => match &template["Parameters"][target]["Default"] {
                            Value::Null => format!("placeholder-{target}"),
                            default => render(default),
                        },
                    }
                }
                Some((tag, arg)) if tag == "Sub" => {
                    let text = arg.as_str().expect("!Sub of a string");
                    let mut out = String::new();
                    let mut rest = text;
                    while let Some(start) = rest.find("${") {
                        out.push_str(&rest[..start]);
                        let end = rest[start..].find('}').expect("closed ${") + start;
                        out.push('x');
                        rest = &rest[end + 1..];
                    }
                    out.push_str(rest);
                    out
                }
                Some((tag, _)) => format!("placeholder-{tag}"),
                None => render(value),
            };
            env.insert(name, value);
        }
    }
    env
}

fn config_of(env: &BTreeMap<String, String>) -> shared::config::Config {
    shared::config::Config::from_lookup(|name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("the template's environment is refused by Config: {e}"))
}

#[test]
fn every_function_reaches_the_cache_over_tls_at_the_primary_endpoint() {
    let template = template();
    let all = resources(&template);
    let url = &template["Globals"]["Function"]["Environment"]["Variables"]["REDIS_URL"];
    let (tag, arg) = intrinsic(url).expect("REDIS_URL: !Sub of the cache's endpoint");
    assert_eq!(tag, "Sub");
    assert_eq!(
        arg.as_str(),
        Some("rediss://${CacheReplicationGroup.PrimaryEndPoint.Address}:${CacheReplicationGroup.PrimaryEndPoint.Port}"),
        "ElastiCache requires TLS (TransitEncryptionMode required): rediss:// to the primary endpoint and its port"
    );
    let cache = &all["CacheReplicationGroup"]["Properties"];
    assert_eq!(cache["TransitEncryptionEnabled"].as_bool(), Some(true));
    assert_eq!(cache["TransitEncryptionMode"].as_str(), Some("required"));
    for (id, function) in functions(&template) {
        assert!(function["Properties"]["Environment"]["Variables"]["REDIS_URL"].is_null(), "{id} overrides REDIS_URL");
        let env = function_env(&template, &id, &BTreeMap::new());
        assert!(env["REDIS_URL"].starts_with("rediss://"), "{id}: {}", env["REDIS_URL"]);
        config_of(&env);
    }
}

#[test]
fn migrations_get_a_long_statement_timeout_and_no_function_is_retried_where_a_rerun_harms() {
    let template = template();
    let all = resources(&template);
    let fns = functions(&template);
    let migrate = config_of(&function_env(&template, "MigrateFunction", &BTreeMap::new()));
    assert_eq!(migrate.database.statement_timeout, std::time::Duration::from_secs(120));
    let api = config_of(&function_env(&template, "MatchesFunction", &BTreeMap::new()));
    assert!(api.database.statement_timeout < migrate.database.statement_timeout, "the API keeps its short timeout");

    // The migrate hook (CodeDeploy invokes it asynchronously) and backup's restores must not rerun.
    for id in ["MigrateFunction", "BackupFunction"] {
        assert_eq!(
            fns[id]["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(),
            Some(0),
            "{id}: asynchronous retries"
        );
    }
    // SAM puts EventInvokeConfig on the alias `live`; CodeDeploy invokes the hook by function name.
    let unqualified: Vec<&Value> = all
        .values()
        .filter(|r| {
            r["Type"].as_str() == Some("AWS::Lambda::EventInvokeConfig")
                && referenced_id(&r["Properties"]["FunctionName"]).as_deref() == Some("MigrateFunction")
        })
        .collect();
    assert_eq!(unqualified.len(), 1, "an EventInvokeConfig of the unqualified migrate function");
    assert_eq!(unqualified[0]["Properties"]["Qualifier"].as_str(), Some("$LATEST"));
    assert_eq!(unqualified[0]["Properties"]["MaximumRetryAttempts"].as_u64(), Some(0));
}

#[test]
fn registration_is_opened_or_closed_by_a_parameter() {
    let template = template();
    let auth = &functions(&template)["AuthFunction"];
    assert_eq!(
        referenced_id(&auth["Properties"]["Environment"]["Variables"]["REGISTRATION_OPEN"]).as_deref(),
        Some("RegistrationOpen")
    );
    let parameter = &template["Parameters"]["RegistrationOpen"];
    assert_eq!(parameter["Default"].as_str(), Some("true"));
    let allowed: Vec<&str> =
        parameter["AllowedValues"].as_sequence().expect("AllowedValues").iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(allowed, ["true", "false"]);
    for value in allowed {
        let env = function_env(&template, "AuthFunction", &BTreeMap::from([("RegistrationOpen", value)]));
        assert_eq!(config_of(&env).auth.registration_open, value == "true", "RegistrationOpen={value}");
    }
}

#[test]
fn an_existing_vpc_replaces_the_templates_network_and_nat_is_one_or_one_per_az() {
    let template = template();
    let all = resources(&template);
    let conditions = &template["Conditions"];
    let (tag, args) = intrinsic(&conditions["CreateVpc"]).expect("CreateVpc: !Equals [!Ref ExistingVpcId, \"\"]");
    assert_eq!(tag, "Equals");
    assert_eq!(referenced_id(&args[0]).as_deref(), Some("ExistingVpcId"));
    assert_eq!(args[1].as_str(), Some(""));
    assert_eq!(template["Parameters"]["ExistingVpcId"]["Default"].as_str(), Some(""));
    assert_eq!(template["Parameters"]["ExistingPrivateSubnetIds"]["Type"].as_str(), Some("CommaDelimitedList"));

    // Everything of the template's own network exists only when it creates the VPC.
    const NETWORK: &[&str] = &[
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::VPCEndpoint",
    ];
    for (id, resource) in &all {
        if NETWORK.contains(&resource["Type"].as_str().unwrap_or_default()) {
            let condition = resource["Condition"].as_str();
            assert!(
                matches!(condition, Some("CreateVpc" | "CreateNatPerAz")),
                "{id} must depend on CreateVpc, has {condition:?}"
            );
        }
    }
    // ... and is referred to only where it exists.
    let conditioned: BTreeMap<String, String> =
        all.iter().filter_map(|(id, r)| r["Condition"].as_str().map(|c| (id.clone(), c.to_string()))).collect();
    let mut problems = Vec::new();
    check_guarded(&template["Globals"], &BTreeSet::new(), &conditioned, "Globals", &mut problems);
    for (id, resource) in &all {
        let guards: BTreeSet<String> = resource["Condition"].as_str().map(str::to_string).into_iter().collect();
        check_guarded(&resource["Properties"], &guards, &conditioned, id, &mut problems);
        for target in one_or_many(&resource["DependsOn"]) {
            let target = target.as_str().unwrap_or_default();
            if let Some(needed) = conditioned.get(target)
                && !implied(&guards, needed)
            {
                problems.push(format!("{id} DependsOn {target} (only with {needed})"));
            }
        }
    }
    for (id, output) in template["Outputs"].as_mapping().into_iter().flatten() {
        let guards: BTreeSet<String> = output["Condition"].as_str().map(str::to_string).into_iter().collect();
        check_guarded(output, &guards, &conditioned, id.as_str().unwrap_or_default(), &mut problems);
    }
    assert!(problems.is_empty(), "references to resources that may not exist: {problems:#?}");

    // NAT: one, or one per AZ (prod by default); with one per AZ, subnet b routes through its own.
    let nat = &template["Parameters"]["NatGateways"];
    assert_eq!(nat["Default"].as_str(), Some("auto"));
    let allowed: BTreeSet<&str> =
        nat["AllowedValues"].as_sequence().expect("values").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(allowed, BTreeSet::from(["auto", "one", "per-az"]));
    assert!(render(&conditions["NatPerAz"]).contains("IsProd"), "auto means one per AZ in prod");
    let nats: Vec<&String> =
        all.iter().filter(|(_, r)| r["Type"].as_str() == Some("AWS::EC2::NatGateway")).map(|(id, _)| id).collect();
    assert_eq!(nats.len(), 2, "{nats:?}");
    assert_eq!(all["NatGatewayB"]["Condition"].as_str(), Some("CreateNatPerAz"));
    let b_routes = render(&all["PrivateSubnetBRoutes"]["Properties"]["RouteTableId"]);
    assert!(b_routes.contains("CreateNatPerAz") && b_routes.contains("PrivateRouteTableB"), "{b_routes}");

    // The functions, the database, its proxy and the cache run in the existing private subnets.
    for (what, subnets) in [
        ("functions", &template["Globals"]["Function"]["VpcConfig"]["SubnetIds"]),
        ("database", &all["DatabaseSubnetGroup"]["Properties"]["SubnetIds"]),
        ("proxy", &all["DatabaseProxy"]["Properties"]["VpcSubnetIds"]),
        ("cache", &all["CacheSubnetGroup"]["Properties"]["SubnetIds"]),
    ] {
        let text = render(subnets);
        assert!(text.starts_with("If CreateVpc") && text.contains("Ref ExistingPrivateSubnetIds"), "{what}: {text}");
    }
}

/// Whether the conditions in `guards` imply `needed` (CreateNatPerAz implies CreateVpc).
fn implied(guards: &BTreeSet<String>, needed: &str) -> bool {
    guards.contains(needed) || (needed == "CreateVpc" && guards.contains("CreateNatPerAz"))
}

/// Every `!Ref`, `!GetAtt` and `${...}` of `value` to a resource with a condition must be under
/// that condition: the resource's own, or the true branch of an `!If`.
fn check_guarded(
    value: &Value,
    guards: &BTreeSet<String>,
    conditioned: &BTreeMap<String, String>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let mut check = |target: &str| {
        if let Some(needed) = conditioned.get(target)
            && !implied(guards, needed)
        {
            problems.push(format!("{at} refers to {target} (only with {needed})"));
        }
    };
    match intrinsic(value) {
        Some((tag, arg)) if tag == "If" => {
            let args = arg.as_sequence().expect("!If [condition, then, else]");
            let mut then_guards = guards.clone();
            then_guards.insert(args[0].as_str().expect("condition name").to_string());
            check_guarded(&args[1], &then_guards, conditioned, at, problems);
            check_guarded(&args[2], guards, conditioned, at, problems);
        }
        Some((tag, _)) if tag == "Ref" || tag == "GetAtt" => {
            if let Some(target) = referenced_id(value) {
                check(&target);
            }
        }
        Some((tag, arg)) if tag == "Sub" => {
            let text = match arg {
                Value::Sequence(items) => items[0].as_str().unwrap_or_default().to_string(),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            for piece in text.split("${").skip(1) {
                let name = piece.split('}').next().unwrap_or_default();
                check(name.split('.').next().unwrap_or_default());
            }
            if let Value::Sequence(items) = arg {
                for item in &items[1..] {
                    check_guarded(item, guards, conditioned, at, problems);
                }
            }
        }
        Some((_, arg)) => check_guarded(arg, guards, conditioned, at, problems),
        None => match value {
            Value::Mapping(map) => {
                for (_, v) in map {
                    check_guarded(v, guards, conditioned, at, problems);
                }
            }
            Value::Sequence(items) => {
                for v in items {
                    check_guarded(v, guards, conditioned, at, problems);
                }
            }
            _ => {}
        },
    }
}

#[test]
fn the_cache_requires_an_auth_token_from_secrets_manager_that_every_function_may_read() {
    let template = template();
    let all = resources(&template);
    let token = render(&all["CacheReplicationGroup"]["Properties"]["AuthToken"]);
    assert_eq!(token, "Sub {{resolve:secretsmanager:${CacheAuthToken}:SecretString}}", "Valkey AUTH from the secret");
    assert_eq!(all["CacheAuthToken"]["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    let global = &template["Globals"]["Function"]["Environment"]["Variables"]["REDIS_AUTH_SECRET_ARN"];
    assert_eq!(render(global), "Ref CacheAuthToken");
    for (id, function) in functions(&template) {
        let reads: BTreeSet<String> = policy_statements(&function)
            .iter()
            .filter(|s| one_or_many(&s["Action"]).iter().any(|a| a.as_str() == Some("secretsmanager:GetSecretValue")))
            .flat_map(|s| one_or_many(&s["Resource"]))
            .map(|r| render(&r))
            .collect();
        assert!(reads.contains("Ref CacheAuthToken"), "{id} cannot read the cache's AUTH token");
        let env = function_env(&template, &id, &BTreeMap::new());
        assert!(config_of(&env).cache.auth.is_some(), "{id} connects to the cache without AUTH");
    }
}

#[test]
fn each_function_reaches_only_its_own_dynamodb_items() {
    let template = template();
    // Per function, the key prefixes of each of its DynamoDB statements (one statement each).
    let flags = vec!["config#feature-flags"];
    let expected: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::from([
        ("AuthFunction", vec![vec!["throttle#*"], flags.clone()]),
        ("PredictionsFunction", vec![vec!["idem#*"], flags.clone()]),
        ("AdminFunction", vec![flags.clone()]),
        ("IngestFunction", vec![vec!["job#ingest#*", "job#import#*"]]),
        ("SettleFunction", vec![vec!["job#settle#*"]]),
        ("TrainFunction", vec![vec!["job#train#*"]]),
        ("BackupFunction", vec![vec!["job#backup#*", "job#restore#*", "job#verify#*"]]),
    ]);
    for (id, function) in functions(&template) {
        let statements: Vec<Value> = policy_statements(&function)
            .into_iter()
            .filter(|s| {
                one_or_many(&s["Action"]).iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("dynamodb:")))
            })
            .collect();
        let Some(prefixes) = expected.get(id.as_str()) else {
            assert!(statements.is_empty(), "{id} may use the DynamoDB table but needs none of it");
            continue;
        };
        let keys: Vec<Vec<String>> = statements
            .iter()
            .map(|s| {
                let keys = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                one_or_many(keys).iter().filter_map(|k| k.as_str().map(str::to_string)).collect()
            })
            .collect();
        assert_eq!(&keys, prefixes, "{id}: dynamodb:LeadingKeys of each statement");
    }
    // Only the admin function may change the flags.
    for (id, function) in functions(&template) {
        for s in policy_statements(&function) {
            let keys = one_or_many(&s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
            let writes = one_or_many(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a != "dynamodb:GetItem" && a.starts_with("dynamodb:")));
            if keys.iter().any(|k| k.as_str() == Some(shared::flags::PK)) && writes {
                assert_eq!(id, "AdminFunction", "{id} may change the feature flags");
            }
        }
    }
    assert_eq!(shared::flags::PK, "config#feature-flags");
    // The code writes exactly those prefixes.
    assert!(shared::throttle::KEY_PREFIX.starts_with("throttle#"));
}

#[test]
fn the_cors_origin_is_required_and_never_a_wildcard_outside_dev() {
    let template = template();
    assert_eq!(template["Parameters"]["AllowedOrigin"]["Default"].as_str(), Some(""), "no `*` default");
    let rule = &template["Rules"]["CorsOriginNamedOutsideDev"];
    assert_eq!(render(&rule["RuleCondition"]), "Not Equals Ref Environment,dev", "{rule:?}");
    let asserts = render(&rule["Assertions"]);
    assert!(asserts.contains("AllowedOrigin"), "{asserts}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/deploy.yml");
    let deploy = std::fs::read_to_string(path).unwrap();
    assert!(deploy.contains("AllowedOrigin=${{ vars.ALLOWED_ORIGIN_STAGING }}"));
    assert!(deploy.contains("AllowedOrigin=${{ vars.ALLOWED_ORIGIN_PROD }}"));
}
