"""Creates the soak's accounts through the project's own services (as `create_api_user`
does, in one process instead of one per account) and prints them as JSON lines.

    python -m bench.chaos.accounts PLAN_JSON   (DJANGO_SETTINGS_MODULE etc. from the soak)

PLAN_JSON: [{"name": ..., "credit": "12.5"}, ...]. Each line out: {"name", "user_id", "key"}.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal


def main() -> None:
    import django

    django.setup()
    from accounts.services import api_key_create, user_create
    from billing.services import credit_grant

    for spec in json.loads(sys.argv[1]):
        user = user_create(email=f"{spec['name']}@chaos.gatewayz.local")
        credit = Decimal(spec["credit"])
        if credit:
            credit_grant(user=user, amount=credit, reference=f"chaos-grant:{user.pk}")
        _, raw = api_key_create(user=user, name="chaos")
        print(json.dumps({"name": spec["name"], "user_id": user.pk, "key": raw}), flush=True)


if __name__ == "__main__":
    main()
