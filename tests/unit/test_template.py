"""Static checks of the one infrastructure definition."""

import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
BOOTSTRAP = TEMPLATE.with_name("bootstrap.yaml")


@pytest.mark.parametrize("template", [TEMPLATE, BOOTSTRAP], ids=lambda p: p.name)
def test_the_templates_pass_cfn_lint(template):
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(template)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("!GetAtt TrainingScheduleRule.Arn", "!GetAtt NoSuchRule.Arn"))
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(broken)], capture_output=True, text=True)
    assert proc.returncode != 0 and "NoSuchRule" in proc.stdout


def test_the_deploy_policy_covers_every_service_the_templates_use():
    import json
    import re

    policy = json.loads((TEMPLATE.parent / "deploy-policy.json").read_text())
    allowed = {a.split(":")[0] for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    used = {m.lower() for t in (TEMPLATE, BOOTSTRAP) for m in re.findall(r"Type: AWS::(\w+)::", t.read_text())}
    missing = used - allowed
    assert not missing, f"infra/deploy-policy.json grants nothing for {sorted(missing)}"
    # these act on no named resource (or one whose ARN is not known before it exists: a KMS key, held to its key spec)
    assert all(st["Resource"] != "*" or st["Sid"] in {"WhoAmI", "ChangeSetTransforms", "Registry", "DescribeLogGroups", "TaskDefinitions",
                                                      "ModelSigningKeyCreate"}
               for st in policy["Statement"]), "a new wildcard resource: scope it to the prefix, or say why"


CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def test_checkov_finds_nothing_but_the_accepted_findings():
    import json

    import yaml

    if not CHECKOV.exists():
        pytest.skip("checkov is not installed (`make install` puts it in .venv-checkov)")
    proc = subprocess.run([str(CHECKOV), "-f", str(TEMPLATE), "-f", str(BOOTSTRAP), "--framework", "cloudformation", "--quiet",
                           "--compact", "-o", "json"], capture_output=True, text=True)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = {(c["check_id"], c["resource"].split(".", 1)[1]) for r in reports for c in r["results"]["failed_checks"]}
    accepted_doc = yaml.safe_load((TEMPLATE.parent / "checkov-accepted.yaml").read_text())
    accepted = {(check, resource) for check, entry in accepted_doc.items() for resource in entry["resources"]}
    assert all(entry["reason"].strip() for entry in accepted_doc.values())
    assert not failed - accepted, f"new checkov findings (fix them, or accept them with a reason in infra/checkov-accepted.yaml): {sorted(failed - accepted)}"
    assert not accepted - failed, f"accepted findings that checkov no longer reports (remove them): {sorted(accepted - failed)}"


def test_every_metric_the_alarms_and_the_dashboard_name_is_one_the_code_writes():
    """Issue 38: metric names were spelled in five places and again in the dashboard; they are defined once
    (sommelier_contract.metric_names.Metric), and an alarm or a widget naming any other would watch nothing."""
    import re

    from sommelier_contract.metric_names import Metric

    text = TEMPLATE.read_text()
    alarmed = set(re.findall(r"MetricName: (\w+)", text))
    charted = set(re.findall(r'\["Sommelier", "(\w+)"', text))
    assert alarmed and charted, "the template's alarms and dashboard were not found"
    assert not (alarmed | charted) - {m.value for m in Metric}, f"not written by any code: {(alarmed | charted) - set(Metric)}"
