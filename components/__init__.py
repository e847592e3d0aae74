"""The platform's ComponentResources (see ARCHITECTURE.md).

Importing this package installs `components.sdk_imports`, so that `aws.<service>.<Class>` loads only
the `pulumi_aws` modules the program uses (its docstring says how, and why it is safe).
"""

from components import sdk_imports

sdk_imports.install()
