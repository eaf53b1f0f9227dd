# Export Platform: local stack and checks. `make` alone lists the targets.
# The stack itself is dev/stack.sh (see its header); all state lives in .stack/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PRODUCTS ?= 100000
PERMS ?= READ_EXPORTS,WRITE_EXPORTS
SUB ?= alice
PART ?=

STACK := dev/stack.sh
ENV := . dev/env.sh

.PHONY: help run up infra down clean status logs seed token test chaos bench lint tools

help: ## list the targets
	@echo "usage: make TARGET [VAR=value]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z_-]*:.*## / { printf "  %-8s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: ## whole stack + demo catalog in the foreground, prints URLs and a token; Ctrl-C stops it
	@dev/run.sh

up: ## start the stack in the background; returns 0 once every service answers /readyz
	@$(STACK) up

infra: ## start only PostgreSQL, Kafka and the S3 server
	@$(STACK) infra

down: ## stop the stack (data kept in .stack/)
	@$(STACK) down

clean: ## stop the stack and remove .stack/ (data, logs, fetched jars, built tools)
	@$(STACK) clean

status: ## state, pid, readiness and address of every part
	@$(STACK) status

logs: ## the log of one part: make logs PART=kafka
	@$(STACK) logs $(PART)

seed: tools ## (re)generate the catalog: make seed PRODUCTS=N (default 100000)
	@$(STACK) start postgres
	@$(ENV) && "$$STACK_DIR/bin/seed" -products $(PRODUCTS)

token: ## print a signed token: make token SUB=alice PERMS=READ_EXPORTS,WRITE_EXPORTS
	@$(STACK) tools >&2
	@$(ENV) && "$$STACK_DIR/bin/token" -sub '$(SUB)' -perms '$(PERMS)'

test: ## every test: starts the stack, go vet, go test -race per module, the fuzz targets (FUZZTIME each), govulncheck, promtool over the alert rules and dashboard, then e2e
	@dev/lib/gocheck.sh test

chaos: ## faults on the real stack (kill -9, Kafka/PostgreSQL/S3 down, stalls, hub kill); prints a table
	@dev/lib/gocheck.sh chaos

bench: ## the benchmarks, one line per figure: name value unit (BENCH_FLAGS=-only=csv,copy)
	@$(STACK) tools >&2 && $(ENV) && "$$STACK_DIR/bin/bench" $(BENCH_FLAGS)

lint: ## gofmt -l must be empty, go vet, govulncheck (code calling a known vulnerability fails), promtool over the alert rules (with their tests) and the dashboard
	@dev/lib/gocheck.sh lint

tools: ## build dev/cmd/* and exportctl into .stack/bin
	@$(STACK) tools
