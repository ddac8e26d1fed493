"""AWS's SAM transform (``aws-sam-translator``), with local code.

``expand(template, base, parameters, pseudo)`` returns a CloudFormation template: local code
paths replaced by placeholders (``package``), then, for a SAM template, transformed by AWS's
translator exactly as CloudFormation would transform it. The translator needs a map of IAM
managed policies (for ``Policies: [AmazonS3ReadOnlyAccess]``); Corral records roles without
enforcing them, so every name maps to its AWS-managed ARN.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from samtranslator.model.exceptions import InvalidDocumentException, InvalidTemplateException
from samtranslator.parser.parser import Parser
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)

from corral.core import errors
from corral.deploy.package import CodeSource, source_of
from corral.deploy.template import is_sam

__all__ = ["expand"]

# The translator logs its own metrics ("There are unpublished metrics...") as warnings.
logging.getLogger("samtranslator").setLevel(logging.ERROR)


class _AnyManagedPolicy(dict[str, str]):
    """Every managed policy name is AWS's (roles are recorded, not enforced)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


def expand(
    template: Mapping[str, Any],
    base: Path,
    parameters: Mapping[str, Any],
    pseudo: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, CodeSource]]:
    """The CloudFormation template to deploy, and the local code its placeholders stand for.

    Raises:
        errors.TemplateError: missing code, or what AWS's translator refuses (its words).
    """
    found = copy.deepcopy(dict(template))
    sources: dict[str, CodeSource] = {}

    def localize(value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("s3://") and "://" not in value:
            source = source_of(value, base)
            sources[source.digest] = source
            return source.placeholder
        return value

    globals_function = (found.get("Globals") or {}).get("Function") or {}
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = localize(globals_function["CodeUri"])
    for resource in found["Resources"].values():
        properties = resource.get("Properties")
        if not isinstance(properties, dict):
            continue
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = localize(properties["CodeUri"])
        elif resource["Type"] == "AWS::Lambda::Function" and isinstance(
            properties.get("Code"), str
        ):
            # `aws cloudformation package` takes a local path here too.
            bucket, key = localize(properties["Code"])[5:].split("/", 1)
            properties["Code"] = {"S3Bucket": bucket, "S3Key": key}
    if not is_sam(found):
        return found, sources
    values = {**parameters, **pseudo}
    region = str(pseudo["AWS::Region"])
    # The translator asks boto3 for the region unless told (the machine may have none).
    ArnGenerator.BOTO_SESSION_REGION_NAME = region
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        to_py27_compatible_template(found, values)
        translated = translator.translate(
            found, parameter_values=values, get_managed_policy_map=_AnyManagedPolicy
        )
        return undo_mark_unicode_str_in_template(translated), sources
    except (InvalidDocumentException, InvalidTemplateException) as exc:
        causes = "; ".join(str(c) for c in getattr(exc, "causes", [])) or str(exc)
        raise errors.TemplateError(f"AWS's SAM transform refused the template: {causes}") from None
