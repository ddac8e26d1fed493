"""``corral deploy``: SAM and CloudFormation templates onto a running Corral.

Belongs here: reading templates (``template``), AWS's SAM transform (``sam``), intrinsic
functions (``intrinsics``), the plan of a deploy (``plan``, pure), packaging code
(``package``) and applying a plan through the Lambda API (``apply``, the only module that
calls the server). Must not be here: anything of the server itself. A deploy is a client of
Corral's API, as ``aws cloudformation deploy`` is of AWS's, and imports only ``core``.
"""
