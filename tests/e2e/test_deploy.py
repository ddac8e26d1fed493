"""``corral deploy`` of SAM templates as users have them: a capacity provider, a Managed
Instances function with an alias and a Function URL, a classic function, a resource Corral
does not deploy; then changes, an idempotent re-deploy, broken templates, and the stack's
deletion. Real server, real functions, AWS's SAM translator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.helpers import Server, corral_cli, error_of, wait_for
from tests.helpers import invoke as call

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
Resources:
  Provider:
    Type: AWS::Serverless::CapacityProvider
    Properties:
      VpcConfig:
        SubnetIds: [subnet-0123456789abcdef0]
  Managed:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: managed/
      MemorySize: 2048
      AutoPublishAlias: live
      CapacityProviderConfig:
        Arn: !GetAtt Provider.Arn
      FunctionScalingConfig: {MinExecutionEnvironments: 1, MaxExecutionEnvironments: 1}
      FunctionUrlConfig: {AuthType: NONE}
      EventInvokeConfig: {MaximumRetryAttempts: 1}
      Environment:
        Variables: {STAGE: !Ref Stage, QUEUE: !Ref Queue}
  Classic:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: classic/
      MemorySize: !If [IsProd, 512, 256]
      Environment:
        Variables: {GREETING: hello}
  Extra:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "def handler(event, context):\\n    return 'extra'\\n"
      Handler: index.handler
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  Url:
    Description: the managed function's URL
    Value: !GetAtt ManagedUrl.FunctionUrl
  ClassicArn:
    Value: !GetAtt Classic.Arn
  Named:
    Value: !Sub "${AWS::StackName}-${Stage}"
"""
CODE = """
import os

def handler(event, context):
    return {"version": "VERSION", "env": {k: v for k, v in os.environ.items()
            if k in ("STAGE", "QUEUE", "GREETING")}}
"""


def project(tmp_path: Path, template: str = TEMPLATE, version: str = "v1") -> Path:
    for name in ("managed", "classic"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "app.py").write_text(CODE.replace("VERSION", f"{name}-{version}"))
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template))
    return path


def invoke(lam: LambdaClient, name: str, **kwargs: Any) -> dict[str, Any]:
    """What the function returned."""
    answer = call(lam, name, **kwargs)
    assert "FunctionError" not in answer, answer["Body"]
    return {"payload": json.loads(answer["Body"])}


def deploy(server: Server, path: Path, *args: str) -> Any:
    return corral_cli(server, "deploy", str(path), "--stack-name", "shop", *args)


def test_a_sam_template_deploys_changes_and_goes(
    server: Server, lam: LambdaClient, tmp_path: Path
) -> None:
    path = project(tmp_path)
    done = deploy(server, path, "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["Status"] == "CREATE_COMPLETE"
    assert record["Skipped"] == [["Queue", "AWS::SQS::Queue"]]
    outputs = {k: v["Value"] for k, v in record["Outputs"].items()}
    assert outputs["Named"] == "shop-dev"
    assert outputs["ClassicArn"].endswith(":function:shop-Classic")
    # Each function answers: the classic one, the managed one through its alias and URL.
    classic = invoke(lam, "shop-Classic")
    assert classic["payload"]["version"] == "classic-v1"
    assert classic["payload"]["env"] == {"GREETING": "hello"}
    managed = invoke(lam, "shop-Managed", Qualifier="live")
    assert managed["payload"]["env"] == {"STAGE": "dev", "QUEUE": "corral-skipped:Queue"}
    assert httpx.get(outputs["Url"]).json()["version"] == "managed-v1"
    assert invoke(lam, "shop-Extra")["payload"] == "extra"
    config = lam.get_function_configuration(FunctionName="shop-Managed", Qualifier="live")
    assert config["MemorySize"] == 2048 and "CapacityProviderConfig" in config
    assert (
        lam.get_function_event_invoke_config(FunctionName="shop-Managed", Qualifier="live")[
            "MaximumRetryAttempts"
        ]
        == 1
    )
    # The same template again: nothing to do, and it says so.
    again = deploy(server, path)
    assert again.exit_code == 0 and "No changes: stack shop is up to date." in again.stdout
    # Changed: a parameter (memory through a condition, an env var), new code, a function
    # removed.
    start, end = TEMPLATE.index("  Extra:"), TEMPLATE.index("  Queue:")
    changed = (TEMPLATE[:start] + TEMPLATE[end:]).replace("GREETING: hello", "GREETING: bonjour")
    assert "Extra" not in changed
    path = project(tmp_path, changed, "v2")
    done = deploy(server, path, "--parameter-overrides", "Stage=prod")
    assert done.exit_code == 0, done.output
    assert "delete" in done.stdout and "Extra" in done.stdout
    classic = invoke(lam, "shop-Classic")
    assert classic["payload"] == {"version": "classic-v2", "env": {"GREETING": "bonjour"}}
    assert lam.get_function_configuration(FunctionName="shop-Classic")["MemorySize"] == 512
    managed = invoke(lam, "shop-Managed", Qualifier="live")
    assert managed["payload"]["version"] == "managed-v2"
    assert managed["payload"]["env"]["STAGE"] == "prod"
    assert lam.get_alias(FunctionName="shop-Managed", Name="live")["FunctionVersion"] == "2"
    error, status, _ = error_of(lam.get_function, FunctionName="shop-Extra")
    assert (error, status) == ("ResourceNotFoundException", 404)
    # The stack, as `corral stacks` shows it; then deleted with everything in it.
    listed = corral_cli(server, "stacks", "list", "--json")
    assert [s["Name"] for s in json.loads(listed.stdout)] == ["shop"]
    shown = corral_cli(server, "stacks", "show", "shop")
    assert "shop-Managed" in shown.stdout and "UPDATE_COMPLETE" in shown.stdout
    gone = corral_cli(server, "stacks", "delete", "shop")
    assert gone.exit_code == 0, gone.output
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert not names & {"shop-Managed", "shop-Classic"}
    assert corral_cli(server, "stacks", "show", "shop").exit_code != 0


BROKEN_RUNTIME = """
Transform: AWS::Serverless-2016-10-31
Resources:
  First:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "def handler(e, c): return 1"
      Handler: index.handler
      Runtime: python3.12
  Second:
    Type: AWS::Serverless::Function
    DependsOn: First
    Properties:
      InlineCode: "def handler(e, c): return 2"
      Handler: index.handler
      Runtime: RUNTIME
"""


def test_broken_templates_leave_nothing_half_made(
    server: Server, lam: LambdaClient, tmp_path: Path
) -> None:
    before = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    path = tmp_path / "template.yaml"
    for text, message in [
        ("Resources: [unclosed", "is not valid YAML or JSON"),
        ("Description: no resources\n", "has no Resources section"),
        (
            "Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n"
            "      FunctionName: !ImportValue other\n",
            "Fn::ImportValue is not supported",
        ),
        (
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n"
            "    Type: AWS::Serverless::Function\n    Properties: {Handler: 3}\n",
            "AWS's SAM transform refused the template",
        ),
    ]:
        path.write_text(text)
        done = corral_cli(server, "deploy", str(path), "--stack-name", "broken")
        assert done.exit_code != 0 and message in done.output, done.output
        assert "nothing was changed" in done.output
    # A step that fails: what this deploy created is removed again.
    path.write_text(BROKEN_RUNTIME.replace("RUNTIME", "python2.7"))
    done = corral_cli(server, "deploy", str(path), "--stack-name", "broken")
    assert done.exit_code != 0 and "the deploy failed" in done.output
    assert "python2.7" in done.output
    assert {f["FunctionName"] for f in lam.list_functions()["Functions"]} == before
    shown = json.loads(corral_cli(server, "stacks", "show", "broken", "--json").stdout)
    assert shown["Status"] == "ROLLBACK_COMPLETE" and shown["Resources"] == []
    # Fixed, it deploys over the failed stack.
    path.write_text(BROKEN_RUNTIME.replace("RUNTIME", "python3.12"))
    done = corral_cli(server, "deploy", str(path), "--stack-name", "broken")
    assert done.exit_code == 0, done.output
    assert invoke(lam, "broken-Second")["payload"] == 2
    assert corral_cli(server, "stacks", "delete", "broken").exit_code == 0


WATCHED = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Live:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: current
"""


def test_watch_mode_redeploys_edited_code_and_keeps_broken_code_out(
    server: Server, lam: LambdaClient, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    handler = tmp_path / "src" / "app.py"
    handler.write_text("def handler(event, context):\n    return 'first'\n")
    path = tmp_path / "template.yaml"
    path.write_text(WATCHED)
    log = tmp_path.parent / f"{tmp_path.name}-watch.log"
    with log.open("w") as out:
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral",
                "deploy",
                str(path),
                "--stack-name",
                "watched",
                "--watch",
                "--endpoint-url",
                server.url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                **server.cli_env(),
                "CORRAL_DATA_DIR": str(server.data_dir),
                "COLUMNS": "200",
            },
            start_new_session=True,
        )
        try:
            wait_for(lambda: "watching" in log.read_text(), timeout_s=60)
            assert invoke(lam, "watched-Live", Qualifier="current")["payload"] == "first"
            # An edit is live at the next invocation, through the alias the template publishes.
            handler.write_text("def handler(event, context):\n    return 'second'\n")
            wait_for(
                lambda: invoke(lam, "watched-Live", Qualifier="current")["payload"] == "second",
                timeout_s=30,
            )
            # A syntax error is shown, and the old code keeps serving.
            handler.write_text("def handler(event, context)\n    return 'broken'\n")
            wait_for(lambda: "not deployed" in log.read_text(), timeout_s=30)
            assert "expected ':'" in log.read_text()
            assert invoke(lam, "watched-Live", Qualifier="current")["payload"] == "second"
        finally:
            os.killpg(watcher.pid, signal.SIGINT)
            try:
                code = watcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(watcher.pid, signal.SIGKILL)
                watcher.wait()
                raise
    assert code == 0, "Ctrl+C ends the watch cleanly"
    assert corral_cli(server, "stacks", "delete", "watched").exit_code == 0


CLOUDFORMATION = """
{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"Weight": {"Type": "Number", "Default": "0.25"}},
  "Resources": {
    "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
    "Fn": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "FunctionName": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "plain"]]},
        "Runtime": "python3.12",
        "Handler": "index.handler",
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Code": {"ZipFile": "def handler(event, context):\\n    return 'VALUE'\\n"},
        "Tags": [{"Key": "team", "Value": {"Fn::Sub": "${AWS::Region}-team"}}]
      }
    },
    "One": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Fn"}}},
    "Deps": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "FunctionName": "cfn-deps",
        "Runtime": "python3.12",
        "Handler": "app.handler",
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Code": "deps/"
      }
    },
    "Live": {
      "Type": "AWS::Lambda::Alias",
      "Properties": {
        "FunctionName": {"Ref": "Fn"},
        "Name": "live",
        "FunctionVersion": {"Fn::GetAtt": ["One", "Version"]},
        "RoutingConfig": {"AdditionalVersionWeights": []}
      }
    },
    "Url": {
      "Type": "AWS::Lambda::Url",
      "Properties": {"TargetFunctionArn": {"Ref": "Live"}, "AuthType": "AWS_IAM"}
    },
    "Async": {
      "Type": "AWS::Lambda::EventInvokeConfig",
      "DependsOn": "Live",
      "Properties": {"FunctionName": {"Ref": "Fn"}, "Qualifier": "live",
                     "MaximumEventAgeInSeconds": 120}
    }
  },
  "Outputs": {"Url": {"Value": {"Fn::GetAtt": ["Url", "FunctionUrl"]}}}
}
"""


def test_a_cloudformation_template_with_dependencies_and_weights(
    server: Server, lam: LambdaClient, tmp_path: Path
) -> None:
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "requirements.txt").write_text("six==1.17.0\n")
    (deps / "app.py").write_text(
        "import six\n\ndef handler(event, context):\n    return six.__version__\n"
    )
    path = tmp_path / "stack.json"
    path.write_text(CLOUDFORMATION.replace("VALUE", "one"))
    done = corral_cli(server, "deploy", str(path), "--stack-name", "cfn", "--json")
    assert done.exit_code == 0, done.output
    record = json.loads(done.stdout)
    assert record["Outputs"]["Url"]["Value"].startswith(f"{server.url}/lambda-url/")
    # requirements.txt was installed into the package, as `sam build` does.
    assert invoke(lam, "cfn-deps")["payload"] == "1.17.0"
    assert invoke(lam, "cfn-plain", Qualifier="live")["payload"] == "one"
    arn = lam.get_function(FunctionName="cfn-plain")["Configuration"]["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "us-east-1-team"}
    assert (
        lam.get_function_url_config(FunctionName="cfn-plain", Qualifier="live")["AuthType"]
        == "AWS_IAM"
    )
    # A second version, and the alias shifts a weight of the traffic to it.
    text = (
        CLOUDFORMATION.replace("VALUE", "two")
        .replace(
            '"Live": {',
            '"Two": {"Type": "AWS::Lambda::Version", "DependsOn": "One",'
            ' "Properties": {"FunctionName": {"Ref": "Fn"}}},\n    "Live": {',
        )
        .replace(
            '"AdditionalVersionWeights": []',
            '"AdditionalVersionWeights": [{"FunctionVersion": {"Fn::GetAtt": ["Two", "Version"]},'
            ' "FunctionWeight": {"Ref": "Weight"}}]',
        )
    )
    path.write_text(text)
    done = corral_cli(server, "deploy", str(path), "--stack-name", "cfn")
    assert done.exit_code == 0, done.output
    alias = lam.get_alias(FunctionName="cfn-plain", Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.25}
    assert corral_cli(server, "stacks", "delete", "cfn").exit_code == 0


UPDATES = """
Resources:
  Pool:
    Type: AWS::Lambda::CapacityProvider
    Properties:
      CapacityProviderName: upd-pool
      VpcConfig: {SubnetIds: [SUBNET]}
      PermissionsConfig: {CapacityProviderOperatorRoleArn: arn:aws:iam::123456789012:role/op}
      CapacityProviderScalingConfig: {MaxVCpuCount: VCPUS}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: NAME
      Runtime: python3.12
      Handler: index.handler
      Role: arn:aws:iam::123456789012:role/x
      Timeout: TIMEOUT
      Code: {ZipFile: "def handler(event, context):\\n    return 1\\n"}
EXTRA
"""
EXTRA = """
      ReservedConcurrentExecutions: 5
  One:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn}
  Url:
    Type: AWS::Lambda::Url
    Properties: {TargetFunctionArn: !Ref Fn, AuthType: AUTH}
  Async:
    Type: AWS::Lambda::EventInvokeConfig
    Properties: {FunctionName: !Ref Fn, Qualifier: $LATEST, MaximumRetryAttempts: RETRIES}
"""


def updates(
    name: str = "upd-fn",
    vcpus: int = 12,
    subnet: str = "subnet-0123456789abcdef0",
    timeout: int = 3,
    extra: str = "",
) -> str:
    return (
        UPDATES.replace("NAME", name)
        .replace("VCPUS", str(vcpus))
        .replace("SUBNET", subnet)
        .replace("TIMEOUT", str(timeout))
        .replace("EXTRA", extra)
    )


def test_updates_in_place_and_changes_that_need_a_new_resource(
    server: Server, lam: LambdaClient, tmp_path: Path
) -> None:
    path = tmp_path / "template.yaml"

    def deploy_text(text: str) -> Any:
        path.write_text(text)
        return corral_cli(server, "deploy", str(path), "--stack-name", "upd")

    extra = EXTRA.replace("AUTH", "NONE").replace("RETRIES", "0")
    done = deploy_text(updates(extra=extra))
    assert done.exit_code == 0, done.output
    assert lam.get_function_concurrency(FunctionName="upd-fn")["ReservedConcurrentExecutions"] == 5
    # In place: the provider's scaling, the function's timeout, the URL's auth, the retries;
    # the version leaves the template and is deleted; the reservation goes.
    done = deploy_text(
        updates(vcpus=24, timeout=9)
        + EXTRA.replace("AUTH", "AWS_IAM")
        .replace("RETRIES", "2")
        .split("  One:")[0]
        .replace("      ReservedConcurrentExecutions: 5\n", "")
        + "  Url:"
        + EXTRA.replace("AUTH", "AWS_IAM").replace("RETRIES", "2").split("  Url:")[1]
    )
    assert done.exit_code == 0, done.output
    provider = lam.get_capacity_provider(CapacityProviderName="upd-pool")["CapacityProvider"]
    assert provider["CapacityProviderScalingConfig"]["MaxVCpuCount"] == 24
    assert lam.get_function_configuration(FunctionName="upd-fn")["Timeout"] == 9
    assert lam.get_function_url_config(FunctionName="upd-fn")["AuthType"] == "AWS_IAM"
    assert lam.get_function_event_invoke_config(FunctionName="upd-fn")["MaximumRetryAttempts"] == 2
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="upd-fn")
    versions = [
        v["Version"] for v in lam.list_versions_by_function(FunctionName="upd-fn")["Versions"]
    ]
    assert versions == ["$LATEST"]
    # What cannot change in place is refused, saying what to do; nothing else moves.
    done = deploy_text(updates(vcpus=24, timeout=9, subnet="subnet-0fedcba9876543210"))
    assert done.exit_code != 0 and "VpcConfig of a capacity provider cannot change" in done.output
    done = deploy_text(updates(name="renamed", vcpus=24, timeout=9))
    assert done.exit_code != 0 and "FunctionName cannot change" in done.output
    shown = json.loads(corral_cli(server, "stacks", "show", "upd", "--json").stdout)
    assert shown["Status"] == "UPDATE_ROLLBACK_COMPLETE" and "FunctionName" in shown["Reason"]
    table = corral_cli(server, "stacks", "show", "upd")
    assert "last deploy:" in table.stdout
    assert corral_cli(server, "stacks", "delete", "upd").exit_code == 0
    assert corral_cli(server, "stacks", "delete", "upd").exit_code != 0
