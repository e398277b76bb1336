"""Bad input for the cluster and sentinel modes fails in preflight, before anything changes, with a
message naming the variable and no secret; good input in check mode on the converged hosts reports
no change in either mode (the tests are molecule/shared/redis_preflight.py's)."""

from redis_preflight import (  # noqa: F401
    bad_runs,
    test_bad_variable_is_named,
    test_check_mode_on_converged_hosts_reports_no_change,
)
