# Targets for the C init live here; owned by init/. Placeholder until the init lands.
.PHONY: init test-init-sanitizers bench-init
init:
test-init-sanitizers:
bench-init:
