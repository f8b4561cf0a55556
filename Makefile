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
	@# --blame: if the test host crashes (a native fault in LibTorch), the log names the test that was running.
	@# DOTNET_GCgen0size (512 MB): about 8× fewer collections. TorchSharp objects that become unreachable during a
	@# native call (implicit scalars, temporaries outside dispose scopes) can be finalized mid-call by a collection
	@# another thread starts; fewer collections make that rare race rarer. It is a mitigation, not a fix.
	@DOTNET_GCgen0size=0x20000000 $(DOTNET) test tests/FaceFusion.Compress.Tests/FaceFusion.Compress.Tests.csproj -c $(CONFIG) --no-build --blame \
	  --logger "console;verbosity=normal" 2>&1 | tee artifacts/test.log; exit $${PIPESTATUS[0]}

## demo: the main job on the bundled data: prepare faces, train (or reuse) teacher and student, export, benchmark.
demo: setup
	@bash scripts/demo.sh

## pack: the ffc command as a dotnet tool package under artifacts/pack.
pack: setup
	@$(DOTNET) pack src/FaceFusion.Compress.Cli/FaceFusion.Compress.Cli.csproj -c $(CONFIG) -o artifacts/pack -nologo -v quiet

clean-data:
	rm -rf datasets/bundled
