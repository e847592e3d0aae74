#!/usr/bin/env bash
# Shift each Lambda service's `live` alias to the version `pulumi up` just published, through its
# CodeDeploy deployment group (canary/linear/all-at-once per stack config, rolled back when the alias's
# error alarm fires). Argument: the stack (org/name); reads its output `lambdaDeployments` (service ->
# deployment) with the Pulumi CLI that pulumi/actions installed.
# AWS: https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-lambda.html (AppSpec
# `Resources[].<name>.Properties` Name, Alias, CurrentVersion, TargetVersion).
set -euo pipefail
stack="$1"
DEPLOYMENTS=$(pulumi stack output lambdaDeployments --json --stack "$stack" 2>/dev/null || echo '{}')
shift_one() {
DEPLOYMENT="$1"
field() { jq -r ".$1" <<<"$DEPLOYMENT"; }
function_name=$(field functionName)
alias_name=$(field alias)
target=$(field targetVersion)
current=$(aws lambda get-alias --function-name "$function_name" --name "$alias_name" --query FunctionVersion --output text)
if [ "$current" = "$target" ]; then
  echo "Alias $alias_name of $function_name already serves version $target."
  return 0
fi
appspec=$(printf '{"version":0.0,"Resources":[{"function":{"Type":"AWS::Lambda::Function","Properties":{"Name":"%s","Alias":"%s","CurrentVersion":"%s","TargetVersion":"%s"}}}]}' \
  "$function_name" "$alias_name" "$current" "$target")
revision=$(jq -n --arg content "$appspec" '{revisionType: "AppSpecContent", appSpecContent: {content: $content}}')
deployment_id=$(aws deploy create-deployment \
  --application-name "$(field application)" \
  --deployment-group-name "$(field deploymentGroup)" \
  --revision "$revision" \
  --query deploymentId --output text)
echo "CodeDeploy $deployment_id shifts $function_name:$alias_name from $current to $target ($(field config))."
aws deploy wait deployment-successful --deployment-id "$deployment_id"
}
jq -c '.[]' <<<"$DEPLOYMENTS" | while read -r deployment; do
  shift_one "$deployment"
done
