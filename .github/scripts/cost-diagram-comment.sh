#!/usr/bin/env bash
# Pull-request comment with the monthly cost delta of every stack and the architecture diagram, both
# computed offline from the plans (python -m offline cost / diagram): the base branch's plan is the
# `preview --json` of the base commit, checked out beside this one. Writes comment.md and diagrams/.
# Usage: cost-diagram-comment.sh BASE_SHA
set -euo pipefail
base_sha="$1"
head_dir="$PWD"
python="$head_dir/.venv/bin/python"
git worktree add --detach ../base "$base_sha" >/dev/null
mkdir -p plans diagrams
{
  echo "### Cost and architecture (offline, from the plans)"
  echo
  echo "| stack | monthly estimate | change vs base |"
  echo "| --- | --- | --- |"
} > comment.md
for stack in dev staging prod; do
  # The base commit's plan, built by the base commit's own program (run from its folder).
  (cd ../base && "$python" -m offline preview --stack "$stack" --no-policy \
    --json "$head_dir/plans/base-$stack.json" >/dev/null) || echo "base plan of $stack unavailable" >&2
  if [ -f "plans/base-$stack.json" ]; then
    "$python" -m offline cost --stack "$stack" --format json --compare "plans/base-$stack.json" > "plans/cost-$stack.json"
  else
    "$python" -m offline cost --stack "$stack" --format json > "plans/cost-$stack.json"
  fi
  total=$(jq -r '.monthlyTotal' "plans/cost-$stack.json")
  change=$(jq -r 'if .compare then .compare.delta else "none" end' "plans/cost-$stack.json")
  if [ "$change" = "none" ]; then
    change_text="n/a (no base plan)"
  else
    change_text=$(printf "%+.2f" "$change" | sed -E 's/^([+-])/\1$/')/month
  fi
  printf '| %s | $%.2f | %s |\n' "$stack" "$total" "$change_text" >> comment.md
  "$python" -m offline diagram --stack "$stack" --format svg --output "diagrams/$stack.svg" >/dev/null
done
{
  echo
  echo "Unknown resource types (not priced): $(jq -r '[.notPriced.unknownTypes | keys[]] | if length == 0 then "none" else join(", ") end' plans/cost-prod.json)"
  echo
  echo "<details><summary>Architecture of prod (generated from the plan; SVGs of every stack are in the run's artifacts)</summary>"
  echo
  echo '```mermaid'
  "$python" -m offline diagram --stack prod --format mermaid
  echo '```'
  echo "</details>"
} >> comment.md
git worktree remove --force ../base
