"""THE table: each Pulumi resource type the platform declares -> its CloudFormation resource type, and
each Pulumi input property -> the CloudFormation property it becomes.

A property listed here is checked against the CloudFormation schema; a property mapped to None is
known not to have a comparable CloudFormation form (different shape, or only an API-model or
cross-field rule checks it) and is counted as "not checked by the schema". Nested objects are walked
key by key with camelCase -> PascalCase, plus NESTED_KEYS where the names differ more.
`autoname`: the Pulumi property that gets `<logical name>-<7 random chars>` when it is not set.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeMap:
    cfn_type: str
    props: dict[str, str | None] = field(default_factory=dict)
    autoname: str | None = None
    """Pulumi property that Pulumi auto-names (logical name + '-' + 7 characters) when unset."""


NESTED_KEYS = {
    "ttl": "TTL",
    "cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled",
}

_TAGS = {"tags": None, "tagsAll": None}  # CloudFormation takes a list of Key/Value; Pulumi a map


def _sg_rule(cfn_type: str, peer: str) -> TypeMap:
    """`aws.vpc.SecurityGroupIngressRule` / `EgressRule`: the same properties; only the peer's group
    and prefix list are `Source...` on ingress and `Destination...` on egress."""
    return TypeMap(
        cfn_type,
        {
            "cidrIpv4": "CidrIp",
            "cidrIpv6": "CidrIpv6",
            "description": "Description",
            "fromPort": "FromPort",
            "toPort": "ToPort",
            "ipProtocol": "IpProtocol",
            "referencedSecurityGroupId": f"{peer}SecurityGroupId",
            "prefixListId": f"{peer}PrefixListId",
            "securityGroupId": "GroupId",
            **_TAGS,
        },
    )


TABLE: dict[str, TypeMap] = {
    # --- network ---------------------------------------------------------------------------------
    "aws:ec2/securityGroup:SecurityGroup": TypeMap(
        "AWS::EC2::SecurityGroup",
        {
            "description": "GroupDescription",
            "name": "GroupName",
            "vpcId": "VpcId",
            "revokeRulesOnDelete": None,
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _sg_rule("AWS::EC2::SecurityGroupIngress", "Source"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _sg_rule("AWS::EC2::SecurityGroupEgress", "Destination"),
    "aws:ec2/flowLog:FlowLog": TypeMap(
        "AWS::EC2::FlowLog",
        {
            "trafficType": "TrafficType",
            "logDestinationType": "LogDestinationType",
            "logDestination": "LogDestination",
            "maxAggregationInterval": "MaxAggregationInterval",
            "iamRoleArn": "DeliverLogsPermissionArn",
            "vpcId": None,
            **_TAGS,
        },
    ),
    # --- compute ---------------------------------------------------------------------------------
    "aws:ecs/cluster:Cluster": TypeMap(
        "AWS::ECS::Cluster",
        {"name": "ClusterName", "settings": "ClusterSettings", "configuration": "Configuration", **_TAGS},
        autoname="name",
    ),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": TypeMap(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {
            "capacityProviders": "CapacityProviders",
            "clusterName": "Cluster",
            "defaultCapacityProviderStrategies": "DefaultCapacityProviderStrategy",
        },
    ),
    "aws:ecs/taskDefinition:TaskDefinition": TypeMap(
        "AWS::ECS::TaskDefinition",
        {
            "family": "Family",
            "cpu": "Cpu",
            "memory": "Memory",
            "networkMode": "NetworkMode",
            "requiresCompatibilities": "RequiresCompatibilities",
            "runtimePlatform": "RuntimePlatform",
            "executionRoleArn": "ExecutionRoleArn",
            "taskRoleArn": "TaskRoleArn",
            "volumes": "Volumes",
            "containerDefinitions": None,  # a JSON string: checked against botocore's ContainerDefinition
            **_TAGS,
        },
    ),
    "aws:ecs/service:Service": TypeMap(
        "AWS::ECS::Service",
        {
            "name": "ServiceName",
            "cluster": "Cluster",
            "taskDefinition": "TaskDefinition",
            "desiredCount": "DesiredCount",
            "capacityProviderStrategies": "CapacityProviderStrategy",
            "deploymentCircuitBreaker": "DeploymentConfiguration.DeploymentCircuitBreaker",
            "deploymentMinimumHealthyPercent": "DeploymentConfiguration.MinimumHealthyPercent",
            "deploymentMaximumPercent": "DeploymentConfiguration.MaximumPercent",
            "enableEcsManagedTags": "EnableECSManagedTags",
            "enableExecuteCommand": "EnableExecuteCommand",
            "healthCheckGracePeriodSeconds": "HealthCheckGracePeriodSeconds",
            "loadBalancers": "LoadBalancers",
            "networkConfiguration.subnets": "NetworkConfiguration.AwsvpcConfiguration.Subnets",
            "networkConfiguration.securityGroups": "NetworkConfiguration.AwsvpcConfiguration.SecurityGroups",
            "propagateTags": "PropagateTags",
            "platformVersion": "PlatformVersion",
            "availabilityZoneRebalancing": "AvailabilityZoneRebalancing",
            "schedulingStrategy": "SchedulingStrategy",
            "launchType": "LaunchType",
            "serviceRegistries.registryArn": "ServiceRegistries[].RegistryArn",
            "networkConfiguration": None,  # assignPublicIp is a boolean in Pulumi, ENABLED/DISABLED in CFN
            "serviceRegistries": None,
            "forceNewDeployment": None,
            "waitForSteadyState": None,
            "triggers": None,
            **_TAGS,
        },
    ),
    "aws:appautoscaling/target:Target": TypeMap(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "minCapacity": "MinCapacity",
            "maxCapacity": "MaxCapacity",
            "resourceId": "ResourceId",
            "scalableDimension": "ScalableDimension",
            "serviceNamespace": "ServiceNamespace",
            **_TAGS,
        },
    ),
    "aws:appautoscaling/policy:Policy": TypeMap(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "name": "PolicyName",
            "policyType": "PolicyType",
            "resourceId": "ResourceId",
            "scalableDimension": "ScalableDimension",
            "serviceNamespace": "ServiceNamespace",
            "targetTrackingScalingPolicyConfiguration": "TargetTrackingScalingPolicyConfiguration",
            "stepScalingPolicyConfiguration": None,
        },
        autoname="name",
    ),
    "aws:lambda/function:Function": TypeMap(
        "AWS::Lambda::Function",
        {
            "name": "FunctionName",
            "description": "Description",
            "runtime": "Runtime",
            "handler": "Handler",
            "memorySize": "MemorySize",
            "timeout": "Timeout",
            "kmsKeyArn": "KmsKeyArn",
            "role": "Role",
            "reservedConcurrentExecutions": "ReservedConcurrentExecutions",
            "architectures": "Architectures",
            "tracingConfig": "TracingConfig",
            "environment": "Environment",
            "loggingConfig": "LoggingConfig",
            "packageType": "PackageType",
            "code": None,  # an archive asset
            "sourceCodeHash": None,
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:lambda/eventSourceMapping:EventSourceMapping": TypeMap(
        "AWS::Lambda::EventSourceMapping",
        {
            "batchSize": "BatchSize",
            "maximumBatchingWindowInSeconds": "MaximumBatchingWindowInSeconds",
            "functionResponseTypes": "FunctionResponseTypes",
            "eventSourceArn": "EventSourceArn",
            "functionName": "FunctionName",
            "scalingConfig": "ScalingConfig",
            "enabled": "Enabled",
            **_TAGS,
        },
    ),
    "aws:lambda/permission:Permission": TypeMap(
        "AWS::Lambda::Permission",
        {"action": "Action", "function": "FunctionName", "principal": "Principal", "sourceArn": "SourceArn"},
    ),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": TypeMap(
        "AWS::Lambda::EventInvokeConfig",
        {
            "functionName": "FunctionName",
            "maximumRetryAttempts": "MaximumRetryAttempts",
            "maximumEventAgeInSeconds": "MaximumEventAgeInSeconds",
            "destinationConfig": "DestinationConfig",
            "qualifier": "Qualifier",
        },
    ),
    # --- load balancing --------------------------------------------------------------------------
    "aws:lb/loadBalancer:LoadBalancer": TypeMap(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "name": "Name",
            "loadBalancerType": "Type",
            "subnets": "Subnets",
            "securityGroups": "SecurityGroups",
            "ipAddressType": "IpAddressType",
            "internal": None,  # boolean in Pulumi, Scheme internal/internet-facing in CFN
            "accessLogs": None,  # LoadBalancerAttributes key/value pairs in CFN
            "dropInvalidHeaderFields": None,
            "desyncMitigationMode": None,
            "enableHttp2": None,
            "idleTimeout": None,
            "enableDeletionProtection": None,
            "enableWafFailOpen": None,
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:lb/targetGroup:TargetGroup": TypeMap(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "name": "Name",
            "port": "Port",
            "protocol": "Protocol",
            "protocolVersion": "ProtocolVersion",
            "targetType": "TargetType",
            "vpcId": "VpcId",
            "healthCheck.enabled": "HealthCheckEnabled",
            "healthCheck.path": "HealthCheckPath",
            "healthCheck.port": "HealthCheckPort",
            "healthCheck.protocol": "HealthCheckProtocol",
            "healthCheck.interval": "HealthCheckIntervalSeconds",
            "healthCheck.timeout": "HealthCheckTimeoutSeconds",
            "healthCheck.healthyThreshold": "HealthyThresholdCount",
            "healthCheck.unhealthyThreshold": "UnhealthyThresholdCount",
            "healthCheck.matcher": "Matcher.HttpCode",
            "healthCheck": None,
            "deregistrationDelay": None,  # TargetGroupAttributes key/value pairs in CFN
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:lb/listener:Listener": TypeMap(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "port": "Port",
            "protocol": "Protocol",
            "sslPolicy": "SslPolicy",
            "loadBalancerArn": "LoadBalancerArn",
            "certificateArn": None,
            "defaultActions": None,  # checked against botocore's elbv2 Action
            "routingHttpResponseStrictTransportSecurityHeaderValue": None,
            **_TAGS,
        },
    ),
    "aws:lb/listenerRule:ListenerRule": TypeMap(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {"priority": "Priority", "listenerArn": "ListenerArn", "actions": None, "conditions": None, **_TAGS},
    ),
    # --- data ------------------------------------------------------------------------------------
    "aws:rds/instance:Instance": TypeMap(
        "AWS::RDS::DBInstance",
        {
            "identifier": "DBInstanceIdentifier",
            "engine": "Engine",
            "engineVersion": "EngineVersion",
            "instanceClass": "DBInstanceClass",
            "allocatedStorage": "AllocatedStorage",
            "storageType": "StorageType",
            "storageEncrypted": "StorageEncrypted",
            "kmsKeyId": "KmsKeyId",
            "dbName": "DBName",
            "username": "MasterUsername",
            "manageMasterUserPassword": "ManageMasterUserPassword",
            "masterUserSecretKmsKeyId": "MasterUserSecret.KmsKeyId",
            "iamDatabaseAuthenticationEnabled": "EnableIAMDatabaseAuthentication",
            "dbSubnetGroupName": "DBSubnetGroupName",
            "vpcSecurityGroupIds": "VPCSecurityGroups",
            "parameterGroupName": "DBParameterGroupName",
            "caCertIdentifier": "CACertificateIdentifier",
            "publiclyAccessible": "PubliclyAccessible",
            "multiAz": "MultiAZ",
            "deletionProtection": "DeletionProtection",
            "backupRetentionPeriod": "BackupRetentionPeriod",
            "backupWindow": "PreferredBackupWindow",
            "maintenanceWindow": "PreferredMaintenanceWindow",
            "copyTagsToSnapshot": "CopyTagsToSnapshot",
            "deleteAutomatedBackups": "DeleteAutomatedBackups",
            "performanceInsightsEnabled": "EnablePerformanceInsights",
            "performanceInsightsKmsKeyId": "PerformanceInsightsKMSKeyId",
            "performanceInsightsRetentionPeriod": "PerformanceInsightsRetentionPeriod",
            "autoMinorVersionUpgrade": "AutoMinorVersionUpgrade",
            "enabledCloudwatchLogsExports": "EnableCloudwatchLogsExports",
            "port": "Port",
            "skipFinalSnapshot": None,
            "finalSnapshotIdentifier": None,
            **_TAGS,
        },
        autoname="identifier",
    ),
    "aws:rds/parameterGroup:ParameterGroup": TypeMap(
        "AWS::RDS::DBParameterGroup",
        {"name": "DBParameterGroupName", "family": "Family", "description": "Description", "parameters": None, **_TAGS},
        autoname="name",
    ),
    "aws:rds/subnetGroup:SubnetGroup": TypeMap(
        "AWS::RDS::DBSubnetGroup",
        {"name": "DBSubnetGroupName", "description": "DBSubnetGroupDescription", "subnetIds": "SubnetIds", **_TAGS},
        autoname="name",
    ),
    "aws:dynamodb/table:Table": TypeMap(
        "AWS::DynamoDB::Table",
        {
            "name": "TableName",
            "billingMode": "BillingMode",
            "deletionProtectionEnabled": "DeletionProtectionEnabled",
            "tableClass": "TableClass",
            "pointInTimeRecovery.enabled": "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled",
            "serverSideEncryption.enabled": "SSESpecification.SSEEnabled",
            "serverSideEncryption.kmsKeyArn": "SSESpecification.KMSMasterKeyId",
            "ttl.attributeName": "TimeToLiveSpecification.AttributeName",
            "ttl.enabled": "TimeToLiveSpecification.Enabled",
            "streamViewType": "StreamSpecification.StreamViewType",
            "attributes": None,  # {name, type} vs AttributeDefinitions {AttributeName, AttributeType}
            "hashKey": None,
            "rangeKey": None,
            "pointInTimeRecovery": None,
            "serverSideEncryption": None,
            "ttl": None,
            "streamEnabled": None,
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": TypeMap(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "replicationGroupId": "ReplicationGroupId",
            "description": "ReplicationGroupDescription",
            "engine": "Engine",
            "engineVersion": "EngineVersion",
            "nodeType": "CacheNodeType",
            "port": "Port",
            "numCacheClusters": "NumCacheClusters",
            "automaticFailoverEnabled": "AutomaticFailoverEnabled",
            "multiAzEnabled": "MultiAZEnabled",
            "subnetGroupName": "CacheSubnetGroupName",
            "securityGroupIds": "SecurityGroupIds",
            "atRestEncryptionEnabled": "AtRestEncryptionEnabled",
            "kmsKeyId": "KmsKeyId",
            "transitEncryptionEnabled": "TransitEncryptionEnabled",
            "transitEncryptionMode": "TransitEncryptionMode",
            "userGroupIds": "UserGroupIds",
            "snapshotRetentionLimit": "SnapshotRetentionLimit",
            "snapshotWindow": "SnapshotWindow",
            "maintenanceWindow": "PreferredMaintenanceWindow",
            "autoMinorVersionUpgrade": "AutoMinorVersionUpgrade",
            "finalSnapshotIdentifier": None,
            **_TAGS,
        },
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": TypeMap(
        "AWS::ElastiCache::SubnetGroup",
        {"name": "CacheSubnetGroupName", "description": "Description", "subnetIds": "SubnetIds", **_TAGS},
        autoname="name",
    ),
    "aws:elasticache/user:User": TypeMap(
        "AWS::ElastiCache::User",
        {
            "userId": "UserId",
            "userName": "UserName",
            "engine": "Engine",
            "accessString": "AccessString",
            "authenticationMode.type": "AuthenticationMode.Type",
            "authenticationMode": None,  # passwords are secrets
            **_TAGS,
        },
    ),
    "aws:elasticache/userGroup:UserGroup": TypeMap(
        "AWS::ElastiCache::UserGroup",
        {"userGroupId": "UserGroupId", "engine": "Engine", "userIds": "UserIds", **_TAGS},
    ),
    # --- messaging -------------------------------------------------------------------------------
    "aws:sqs/queue:Queue": TypeMap(
        "AWS::SQS::Queue",
        {
            "name": "QueueName",
            "visibilityTimeoutSeconds": "VisibilityTimeout",
            "messageRetentionSeconds": "MessageRetentionPeriod",
            "kmsMasterKeyId": "KmsMasterKeyId",
            "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
            "delaySeconds": "DelaySeconds",
            "maxMessageSize": "MaximumMessageSize",
            "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
            "fifoQueue": "FifoQueue",
            "redrivePolicy": "RedrivePolicy",
            "sqsManagedSseEnabled": "SqsManagedSseEnabled",
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:sqs/queuePolicy:QueuePolicy": TypeMap("AWS::SQS::QueuePolicy", {"policy": "PolicyDocument", "queueUrl": None}),
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": TypeMap(
        "AWS::SQS::Queue", {"redriveAllowPolicy": "RedriveAllowPolicy", "queueUrl": None}
    ),
    "aws:sns/topic:Topic": TypeMap(
        "AWS::SNS::Topic",
        {"name": "TopicName", "displayName": "DisplayName", "kmsMasterKeyId": "KmsMasterKeyId", **_TAGS},
        autoname="name",
    ),
    "aws:sns/topicPolicy:TopicPolicy": TypeMap("AWS::SNS::TopicPolicy", {"policy": "PolicyDocument", "arn": None}),
    "aws:cloudwatch/eventBus:EventBus": TypeMap(
        "AWS::Events::EventBus",
        {"name": "Name", "description": "Description", "kmsKeyIdentifier": "KmsKeyIdentifier", **_TAGS},
        autoname="name",
    ),
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": TypeMap(
        "AWS::Events::EventBusPolicy", {"eventBusName": "EventBusName", "policy": None}
    ),
    "aws:cloudwatch/eventArchive:EventArchive": TypeMap(
        "AWS::Events::Archive",
        {
            "name": "ArchiveName",
            "description": "Description",
            "retentionDays": "RetentionDays",
            "eventPattern": "EventPattern",
            "kmsKeyIdentifier": "KmsKeyIdentifier",
            "eventSourceArn": "SourceArn",
        },
        autoname="name",
    ),
    "aws:cloudwatch/eventRule:EventRule": TypeMap(
        "AWS::Events::Rule",
        {
            "name": "Name",
            "description": "Description",
            "eventPattern": "EventPattern",
            "eventBusName": "EventBusName",
            "state": "State",
            "scheduleExpression": "ScheduleExpression",
            "roleArn": "RoleArn",
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:cloudwatch/eventTarget:EventTarget": TypeMap(
        "AWS::Events::Rule",
        {
            "rule": "Name",
            "eventBusName": "EventBusName",
            "arn": "Targets[].Arn",
            "targetId": "Targets[].Id",
            "roleArn": "Targets[].RoleArn",
            "retryPolicy": "Targets[].RetryPolicy",
            "deadLetterConfig": "Targets[].DeadLetterConfig",
            "input": "Targets[].Input",
            "inputPath": "Targets[].InputPath",
        },
    ),
    "aws:schemas/registry:Registry": TypeMap(
        "AWS::EventSchemas::Registry", {"name": "RegistryName", "description": "Description", **_TAGS}, autoname="name"
    ),
    "aws:schemas/schema:Schema": TypeMap(
        "AWS::EventSchemas::Schema",
        {
            "name": "SchemaName",
            "registryName": "RegistryName",
            "type": "Type",
            "content": "Content",
            "description": "Description",
            **_TAGS,
        },
    ),
    # --- observability ---------------------------------------------------------------------------
    "aws:cloudwatch/logGroup:LogGroup": TypeMap(
        "AWS::Logs::LogGroup",
        {
            "name": "LogGroupName",
            "retentionInDays": "RetentionInDays",
            "kmsKeyId": "KmsKeyId",
            "logGroupClass": "LogGroupClass",
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": TypeMap(
        "AWS::Logs::ResourcePolicy", {"policyName": "PolicyName", "policyDocument": "PolicyDocument"}
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": TypeMap(
        "AWS::CloudWatch::Alarm",
        {
            "name": "AlarmName",
            "alarmDescription": "AlarmDescription",
            "comparisonOperator": "ComparisonOperator",
            "evaluationPeriods": "EvaluationPeriods",
            "datapointsToAlarm": "DatapointsToAlarm",
            "metricName": "MetricName",
            "namespace": "Namespace",
            "period": "Period",
            "statistic": "Statistic",
            "threshold": "Threshold",
            "treatMissingData": "TreatMissingData",
            "unit": "Unit",
            "alarmActions": "AlarmActions",
            "okActions": "OKActions",
            "dimensions": None,  # a map in Pulumi, a list of Name/Value in CFN
            "metricQueries": None,  # checked by the alarm-period rule
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:cloudwatch/dashboard:Dashboard": TypeMap(
        "AWS::CloudWatch::Dashboard", {"dashboardName": "DashboardName", "dashboardBody": "DashboardBody"}
    ),
    # --- edge ------------------------------------------------------------------------------------
    "aws:wafv2/webAcl:WebAcl": TypeMap(
        "AWS::WAFv2::WebACL",
        {
            "name": "Name",
            "description": "Description",
            "scope": "Scope",
            "defaultAction": "DefaultAction",
            "visibilityConfig": "VisibilityConfig",
            "rules": None,  # checked against botocore's wafv2 Rule
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:wafv2/webAclAssociation:WebAclAssociation": TypeMap(
        "AWS::WAFv2::WebACLAssociation", {"resourceArn": "ResourceArn", "webAclArn": "WebACLArn"}
    ),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": TypeMap(
        "AWS::WAFv2::LoggingConfiguration",
        {"resourceArn": "ResourceArn", "logDestinationConfigs": "LogDestinationConfigs", "redactedFields": None},
    ),
    "aws:apigatewayv2/api:Api": TypeMap(
        "AWS::ApiGatewayV2::Api",
        {"name": "Name", "protocolType": "ProtocolType", "description": "Description", **_TAGS},
        autoname="name",
    ),
    "aws:apigatewayv2/vpcLink:VpcLink": TypeMap(
        "AWS::ApiGatewayV2::VpcLink",
        {"name": "Name", "subnetIds": "SubnetIds", "securityGroupIds": "SecurityGroupIds", "tags": None},
        autoname="name",
    ),
    "aws:apigatewayv2/integration:Integration": TypeMap(
        "AWS::ApiGatewayV2::Integration",
        {
            "apiId": "ApiId",
            "integrationType": "IntegrationType",
            "integrationMethod": "IntegrationMethod",
            "integrationUri": "IntegrationUri",
            "connectionType": "ConnectionType",
            "connectionId": "ConnectionId",
            "payloadFormatVersion": "PayloadFormatVersion",
            "timeoutMilliseconds": "TimeoutInMillis",
            "tlsConfig": "TlsConfig",
        },
    ),
    "aws:apigatewayv2/route:Route": TypeMap(
        "AWS::ApiGatewayV2::Route",
        {
            "apiId": "ApiId",
            "routeKey": "RouteKey",
            "target": "Target",
            "authorizationType": "AuthorizationType",
            "authorizerId": "AuthorizerId",
        },
    ),
    "aws:apigatewayv2/stage:Stage": TypeMap(
        "AWS::ApiGatewayV2::Stage",
        {
            "name": "StageName",
            "apiId": "ApiId",
            "autoDeploy": "AutoDeploy",
            "defaultRouteSettings": "DefaultRouteSettings",
            "accessLogSettings": "AccessLogSettings",
            "tags": None,
        },
    ),
    "aws:apigatewayv2/authorizer:Authorizer": TypeMap(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "apiId": "ApiId",
            "authorizerType": "AuthorizerType",
            "identitySources": "IdentitySource",
            "name": "Name",
            "jwtConfiguration": "JwtConfiguration",
        },
        autoname="name",
    ),
    "aws:acm/certificate:Certificate": TypeMap(
        "AWS::CertificateManager::Certificate",
        {"domainName": "DomainName", "validationMethod": "ValidationMethod", "certificateBody": None, **_TAGS},
    ),
    # --- identity, keys, secrets -----------------------------------------------------------------
    "aws:iam/role:Role": TypeMap(
        "AWS::IAM::Role",
        {
            "name": "RoleName",
            "path": "Path",
            "description": "Description",
            "maxSessionDuration": "MaxSessionDuration",
            "assumeRolePolicy": "AssumeRolePolicyDocument",
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:iam/rolePolicy:RolePolicy": TypeMap(
        "AWS::IAM::RolePolicy", {"name": "PolicyName", "policy": "PolicyDocument", "role": "RoleName"}, autoname="name"
    ),
    "aws:kms/key:Key": TypeMap(
        "AWS::KMS::Key",
        {
            "description": "Description",
            "enableKeyRotation": "EnableKeyRotation",
            "deletionWindowInDays": "PendingWindowInDays",
            "keyUsage": "KeyUsage",
            "customerMasterKeySpec": "KeySpec",
            "policy": "KeyPolicy",
            "rotationPeriodInDays": "RotationPeriodInDays",
            **_TAGS,
        },
    ),
    "aws:kms/alias:Alias": TypeMap("AWS::KMS::Alias", {"name": "AliasName", "targetKeyId": "TargetKeyId"}),
    "aws:secretsmanager/secret:Secret": TypeMap(
        "AWS::SecretsManager::Secret",
        {"name": "Name", "description": "Description", "kmsKeyId": "KmsKeyId", "recoveryWindowInDays": None, **_TAGS},
        autoname="name",
    ),
    "aws:secretsmanager/secretPolicy:SecretPolicy": TypeMap(
        "AWS::SecretsManager::ResourcePolicy",
        {"secretArn": "SecretId", "policy": "ResourcePolicy", "blockPublicPolicy": "BlockPublicPolicy"},
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": TypeMap(
        "AWS::SecretsManager::Secret", {"secretId": None, "secretString": None}
    ),
    "aws:acmpca/certificateAuthority:CertificateAuthority": TypeMap(
        "AWS::ACMPCA::CertificateAuthority",
        {
            "type": "Type",
            "usageMode": "UsageMode",
            "keyStorageSecurityStandard": "KeyStorageSecurityStandard",
            "certificateAuthorityConfiguration.keyAlgorithm": "KeyAlgorithm",
            "certificateAuthorityConfiguration.signingAlgorithm": "SigningAlgorithm",
            "certificateAuthorityConfiguration.subject": "Subject",
            "revocationConfiguration": "RevocationConfiguration",
            "certificateAuthorityConfiguration": None,
            "permanentDeletionTimeInDays": None,
            **_TAGS,
        },
    ),
    "aws:acmpca/certificate:Certificate": TypeMap(
        "AWS::ACMPCA::Certificate",
        {
            "certificateAuthorityArn": "CertificateAuthorityArn",
            "certificateSigningRequest": "CertificateSigningRequest",
            "signingAlgorithm": "SigningAlgorithm",
            "templateArn": "TemplateArn",
            "validity": "Validity",
        },
    ),
    "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate": TypeMap(
        "AWS::ACMPCA::CertificateAuthorityActivation",
        {
            "certificateAuthorityArn": "CertificateAuthorityArn",
            "certificate": "Certificate",
            "certificateChain": "CertificateChain",
        },
    ),
    "aws:ecr/repository:Repository": TypeMap(
        "AWS::ECR::Repository",
        {
            "name": "RepositoryName",
            "imageTagMutability": "ImageTagMutability",
            "imageScanningConfiguration": "ImageScanningConfiguration",
            "encryptionConfigurations": None,  # a one-item list in Pulumi, an object in CFN
            "forceDelete": None,
            **_TAGS,
        },
        autoname="name",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": TypeMap(
        "AWS::ECR::Repository",
        {"repository": "RepositoryName", "policy": "LifecyclePolicy.LifecyclePolicyText"},
    ),
    # --- discovery -------------------------------------------------------------------------------
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": TypeMap(
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        {"name": "Name", "description": "Description", "vpc": "Vpc", **_TAGS},
    ),
    "aws:servicediscovery/service:Service": TypeMap(
        "AWS::ServiceDiscovery::Service",
        {
            "name": "Name",
            "description": "Description",
            "namespaceId": "NamespaceId",
            "dnsConfig": "DnsConfig",
            "healthCheckCustomConfig": "HealthCheckCustomConfig",
            **_TAGS,
        },
    ),
    # --- storage ---------------------------------------------------------------------------------
    "aws:s3/bucket:Bucket": TypeMap(
        "AWS::S3::Bucket", {"bucket": "BucketName", "forceDestroy": None, **_TAGS}, autoname="bucket"
    ),
    "aws:s3/bucketPolicy:BucketPolicy": TypeMap(
        "AWS::S3::BucketPolicy", {"bucket": "Bucket", "policy": "PolicyDocument"}
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": TypeMap(
        "AWS::S3::Bucket",
        {
            "blockPublicAcls": "PublicAccessBlockConfiguration.BlockPublicAcls",
            "blockPublicPolicy": "PublicAccessBlockConfiguration.BlockPublicPolicy",
            "ignorePublicAcls": "PublicAccessBlockConfiguration.IgnorePublicAcls",
            "restrictPublicBuckets": "PublicAccessBlockConfiguration.RestrictPublicBuckets",
            "bucket": None,
        },
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": TypeMap(
        "AWS::S3::Bucket",
        {"rule.objectOwnership": "OwnershipControls.Rules[].ObjectOwnership", "rule": None, "bucket": None},
    ),
}
"""Pulumi type -> CloudFormation type and property table (see the module docstring)."""
