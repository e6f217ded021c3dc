# Policy of the buildfleet manager's Nomad token (see README in this folder).
# Replace "buildfleet" with the namespace of config nomad.namespace.
#
# dispatch-job    start one runner: dispatch a child of a pool job
# read-job        job and allocation state, evaluations (blocked reasons);
#                 also the Job/Allocation/Evaluation event stream topics
# list-jobs       resync: list children and their allocations
# submit-job      stop and purge a child (Deregister has no narrower
#                 capability). NOTE: submit-job also allows registering any
#                 job in this namespace, i.e. running commands on every host
#                 the namespace reaches. Keep the namespace for runners only;
#                 drop submit-job if the manager should only dispatch, at the
#                 cost of pending runners it cannot cancel.
# read-logs       the end of a runner's output when it ended without taking
#                 its job, to recognise GitHub refusing it as outdated
# variables       write and delete the per-runner JIT configs only; no read:
#                 the manager never needs to read a config back.
namespace "buildfleet" {
  capabilities = ["dispatch-job", "read-job", "list-jobs", "submit-job", "read-logs"]

  variables {
    path "buildfleet/runners/*" {
      capabilities = ["write", "destroy"]
    }
  }
}

# Node topic of the event stream, host names and eligibility in status.
# "write" lets the manager take a host out of scheduling after repeated
# infrastructure failures (config notify.max_failures); with "read" it
# logs that it could not, and the host stays in.
node {
  policy = "read"
}
