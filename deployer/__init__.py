"""The deploy path to a real AWS account (`make deploy`, `make destroy`) and its rehearsal against a fresh emulator
(`make deploy-rehearsal`). It sits beside devstack, which runs the local stack: it borrows devstack's runtime helpers
(containers, the ECS task) and provisions with the hooks' own library (hooklib), so code is bundled one way."""
