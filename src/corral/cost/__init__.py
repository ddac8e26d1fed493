"""Instance types and prices, and (later) the classic-versus-Managed-Instances calculator.

Belongs here: the instance-type catalogue shipped as data (``data/instance_types.json``),
filtering it by ``InstanceRequirements``, the rule that picks a type when the user names
none, and pure cost arithmetic. Must not be here: anything that depends on a running
Corral. Imports ``core`` only.
"""
