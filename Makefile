# FaceFusion.Compress — the two commands are `make test` and `make demo`; both run `make setup` first.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIG ?= Release
FFC := $(DOTNET) src/FaceFusion.Compress.Cli/bin/$(CONFIG)/net10.0/ffc.dll
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

.PHONY: setup system assets build test demo pack clean-data

## setup: system packages (libstdc++ fix, ffmpeg), model/media fetch with SHA-256, NuGet restore and build. Idempotent.
setup: system assets build

system:
	@bash scripts/setup-system.sh

assets:
	@bash scripts/fetch-assets.sh

build:
	@$(DOTNET) build FaceFusion.Compress.sln -c $(CONFIG) -nologo -v quiet -clp:ErrorsOnly

## test: unit and integration tests on tiny networks and the cached bundled assets.
test: setup
	@rm -rf "$${TMPDIR:-/tmp}/ffc-tests"
	@# scripts/run-tests.sh: dotnet test --blame (a crashed host's log names the test that was running); if the host
	@# crashes (a native fault in LibTorch: README, platform notes) the unfinished tests run once more in a fresh host.
	@# It sets DOTNET_GCgen0size (512 MB): about 8x fewer collections, so TorchSharp's finalizer race is rarer.
	@bash scripts/run-tests.sh $(CONFIG)

## demo: the main job on the bundled data: prepare faces, train (or reuse) teacher and student, export, benchmark.
demo: setup
	@bash scripts/demo.sh

## pack: the ffc command as a dotnet tool package under artifacts/pack.
pack: setup
	@$(DOTNET) pack src/FaceFusion.Compress.Cli/FaceFusion.Compress.Cli.csproj -c $(CONFIG) -o artifacts/pack -nologo -v quiet

clean-data:
	rm -rf datasets/bundled
