using FaceFusion.Compress.Cli.Commands;
using Spectre.Console;
using Spectre.Console.Cli;

// Logs and pipes get full-width tables instead of Spectre's 80-column fallback.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("ffc");
    config.SetInterceptor(new FaceFusion.Compress.Cli.FiniteNumbers());
    config.SetApplicationVersion(typeof(FaceFusion.Compress.Data.FaceManifest).Assembly.GetName().Version?.ToString(3) ?? "0");
    config.SetExceptionHandler((exception, _) =>
    {
        // Bad input is the user's to fix: one clear line naming the file and the cause, exit code 1.
        // Plain stderr, unwrapped, so scripts and logs keep the whole message on one line.
        Console.Error.WriteLine(FaceFusion.Compress.Cli.ErrorLine.Of(exception));
        if (Environment.GetEnvironmentVariable("FFC_DEBUG") == "1") AnsiConsole.WriteException(exception);
        return 1;
    });
    config.AddCommand<InfoCommand>("info")
        .WithDescription("Print a model's params and MACs per node and stage (and vs the teacher); --json for scripts.");
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train a swapper from a YAML config (progressive resolution, checkpoints, --resume, CSV/TensorBoard logs).");
    config.AddCommand<WarmStartCommand>("warm-start")
        .WithDescription("Build an edited architecture (graph.json) and copy a trained checkpoint's parameters wherever name and shape match.");
    config.AddCommand<ExportCommand>("export")
        .WithDescription("Export a checkpoint to ONNX (fp32, fp16) with FaceFusion's IO names, BN folded, dynamic batch.");
    config.AddCommand<BenchCommand>("bench")
        .WithDescription("Validate an ONNX swapper in ONNX Runtime: load time, latency, throughput, parity, PSNR/SSIM, identity, slices; bench.csv + plots.");
    config.AddCommand<BenchLoadProbeCommand>("bench-load-probe").IsHidden();
    // `ffc prune MODEL --target-… -o DIR` prunes; `ffc prune groups MODEL` lists the channel groups.
    config.AddCommand<PruneCommand>("prune")
        .WithDescription("Iterative structured pruning to a MAC/param/latency target with fine-tuning and rollback; `ffc prune groups MODEL` lists channel groups.");
    config.AddCommand<RunCommand>("run")
        .WithDescription("Run a YAML recipe (train → sensitivity → prune → distill → ptq → export → bench → report), resumable; --dry-run prints the plan.");
    config.AddCommand<ReportCommand>("report")
        .WithDescription("Rebuild a recipe run's report (report.md with plots, report.csv) from its run.json and stage outputs.");
    config.AddCommand<RecommendCommand>("recommend")
        .WithDescription("Pick the best exported model of one or more runs under --latency-ms X or --size-mb X, and explain the choice.");
    config.AddCommand<SwapCommand>("swap")
        .WithDescription("Swap a face into an image or video with an ONNX swapper (detect, align, swap, colour-correct, paste back).");
    config.AddCommand<DistillCommand>("distill")
        .WithDescription("Distil a student from a teacher (checkpoint or ONNX): pixel, mask, CWD/feature, perceptual, identity, adversarial, illumination losses.");
    config.AddCommand<PtqCommand>("ptq")
        .WithDescription("Post-training static INT8 quantization to a QDQ ONNX model (calibrated, mixed precision); shows ORT's integer kernels.");
    config.AddCommand<QatCommand>("qat")
        .WithDescription("Quantization-aware training (BN folded, fake INT8 with STE, mixed precision, observers/LSQ), then INT8 QDQ export with parity and per-node SQNR.");
    config.AddCommand<SensitivityCommand>("sensitivity")
        .WithDescription("Per-group pruning sensitivity (val PSNR drop vs ratio): sensitivity.csv, a chart, and ratios for a MAC budget.");
    config.AddBranch("benchmark", bench =>
    {
        bench.SetDescription("Performance measurements that print their numbers (nothing is asserted).");
        bench.AddCommand<BenchmarkTrainCommand>("train")
            .WithDescription("Training images/s of the teacher and student at 64 and 128 px; writes artifacts/bench/train_speed.csv.");
        bench.AddCommand<BenchmarkAblationCommand>("ablation")
            .WithDescription("Distillation loss ablation: the same distillation with each loss term removed once; PSNR, SSIM, identity, PSNR vs teacher; ablation.csv.");
        bench.AddCommand<BenchmarkPruneCommand>("prune")
            .WithDescription("Prune one model to one target with several importance criteria (Taylor, L1, random): params, MACs, ORT p50, test PSNR; prune_benchmark.csv.");
        bench.AddCommand<BenchmarkSwapCommand>("swap")
            .WithDescription("Per-stage time of ffc swap per frame (detect … paste) on the 1920-px group photos and the bundled videos.");
        bench.AddCommand<BenchmarkJudgeCommand>("judge")
            .WithDescription("Verification accuracy of the identity judge (face-api FaceRecognitionNet) at distance < 0.6 on the bundled test faces and still photos.");
        bench.AddCommand<BenchmarkSwapJudgeCommand>("swap-judge")
            .WithDescription("Swap metrics that copying the target cannot fake (judge source/target rate, landmark NME, source sensitivity, HF ratio) for ONNX swappers and copy-target, held-in and unseen pairs.");
        bench.AddCommand<BenchmarkLatencyCommand>("latency")
            .WithDescription("Batch-1 latency of one or more ONNX models (swappers or any other) in interleaved rounds (fair under background load).");
        bench.AddCommand<BenchmarkPtqCommand>("ptq")
            .WithDescription("PTQ table: every calibration method on the kept teacher and the bundled recogniser, and the teacher's FP32 export through the importer: fidelity, PSNR, cosine, SQNR, size, latency ratio; ptq_benchmark.csv.");
    });
    config.AddBranch("data", data =>
    {
        data.SetDescription("Prepare and inspect aligned face datasets (detect, landmarks, align, embed, split).");
        data.AddCommand<DataPrepareCommand>("prepare")
            .WithDescription("Detect, align and embed faces from the bundled media or a folder (--input DIR) into a dataset.");
        data.AddCommand<DataStatsCommand>("stats")
            .WithDescription("Print faces per identity and split; write a contact sheet PNG of aligned crops.");
    });
});
return app.Run(args);
