"""roles/redis's preflight on the whole topology's redis hosts: bad input for the cluster and sentinel
modes fails before anything changes, naming the variable and printing no secret; good input in check
mode on the converged hosts reports no change in either mode (the tests are
molecule/shared/redis_preflight.py's, shared with the redis_ha scenario)."""

from redis_preflight import (  # noqa: F401
    bad_runs,
    test_bad_variable_is_named,
    test_check_mode_on_converged_hosts_reports_no_change,
)
