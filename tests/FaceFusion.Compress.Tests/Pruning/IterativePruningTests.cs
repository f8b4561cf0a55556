using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Pruning;
using FaceFusion.Compress.Tests.Export;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Pruning;

public class IterativePruningTests
{
    [Fact]
    public void Selection_RemovesAtMostTheStepFraction_InBlocksOfEight()
    {
        var analysis = new ChannelAnalysis(SwapperArchitectures.Teacher(64));
        var rng = new Random(3);
        var importance = analysis.Groups.Where(g => g.Prunable).ToDictionary(g => g.Id, g => Enumerable.Range(0, g.Size).Select(_ => rng.NextDouble()).ToArray());
        var options = new SelectionOptions { StepFraction = 0.1, MinChannels = 8, Skip = new HashSet<string> { "enc4_conv" } };
        var removal = ChannelSelector.Select(analysis, importance, options);
        int prunable = analysis.Groups.Where(g => g.Prunable).Sum(g => g.Size);
        int removed = removal.Values.Sum(v => v.Length);
        Assert.InRange(removed, 1, (int)(0.1 * prunable));
        Assert.True(removed > 0.08 * prunable, $"removed {removed} of {prunable}");
        foreach (var (id, channels) in removal)
        {
            var g = analysis.Group(id);
            int newSize = g.Size - channels.Length;
            Assert.True(newSize >= 8);
            if (g.Size % 8 == 0) Assert.Equal(0, newSize % 8); // 16 → 15 would leave the CPU's 8-channel blocks
            Assert.DoesNotContain("enc4_conv", g.Producers);
            // The least important channels go first.
            var kept = Enumerable.Range(0, g.Size).Except(channels).ToArray();
            Assert.True(channels.Max(c => importance[id][c] / importance[id].Average()) <= kept.Max(c => importance[id][c] / importance[id].Average()));
        }
    }

    [Fact]
    public void Selection_KeepsSmallGroupsOnTheChannelBlocks_UnlessToldOtherwise()
    {
        // A 16-channel group whose first channel is by far the least important: with blocks of 8 it may lose 8 or
        // none, never just that one; with single-channel granularity it loses exactly that one.
        var g = new GraphBuilder("small", 16);
        var x = g.ImageInput("image", 3);
        var c1 = g.Conv("c1", x, 16, kernel: 3);
        g.Output("out", g.Conv("c2", c1, 3, kernel: 1));
        var analysis = new ChannelAnalysis(g.Build());
        var group = analysis.Groups.Single(gr => gr.Prunable);
        var importance = new Dictionary<int, double[]> { [group.Id] = Enumerable.Range(0, 16).Select(i => i == 0 ? 0.001 : 1.0).ToArray() };
        var blocks = ChannelSelector.Select(analysis, importance, new SelectionOptions { StepFraction = 0.1, MinChannels = 8 });
        Assert.Empty(blocks); // 10 % of 16 channels is 1: a block of 8 does not fit the step
        var blocksBigStep = ChannelSelector.Select(analysis, importance, new SelectionOptions { StepFraction = 0.5, MinChannels = 8 });
        Assert.Equal(8, blocksBigStep[group.Id].Length);
        Assert.Contains(0, blocksBigStep[group.Id]);
        var single = ChannelSelector.Select(analysis, importance, new SelectionOptions { StepFraction = 0.1, MinChannels = 8, ChannelMultiple = 1 });
        Assert.Equal([0], single[group.Id]);
    }

    [Fact]
    public void MacAwareSelection_PrefersTheChannelsThatCostMost_AtEqualImportance()
    {
        // Two 16-channel groups: 'hi' at 32×32 (a channel costs its own 3×3 conv there and the stride-2 conv that
        // reads it), 'lo' at 16×16. 'lo' is the less important by a little, so plain ranking cuts it; per MAC saved
        // 'hi' goes first.
        var g = new GraphBuilder("costs", 32);
        var x = g.ImageInput("image", 3);
        var hi = g.Conv("hi", x, 16, kernel: 3);
        var lo = g.Conv("lo", hi, 16, kernel: 3, stride: 2);
        g.Output("out", g.Conv("out", lo, 3, kernel: 1));
        var analysis = new ChannelAnalysis(g.Build());
        var hiGroup = analysis.Groups.Single(gr => gr.Producers.Contains("hi"));
        var loGroup = analysis.Groups.Single(gr => gr.Producers.Contains("lo"));
        var cost = ChannelSelector.MacsPerChannel(analysis, [hiGroup, loGroup]);
        Assert.Equal(3 * 9 * 32 * 32 + 16 * 9 * 16 * 16, cost[hiGroup.Id]);
        Assert.Equal(16 * 9 * 16 * 16 + 3 * 16 * 16, cost[loGroup.Id]);

        var importance = new Dictionary<int, double[]>
        {
            [hiGroup.Id] = Enumerable.Range(0, 16).Select(i => i < 8 ? 0.9 : 1.1).ToArray(),
            [loGroup.Id] = Enumerable.Range(0, 16).Select(i => i < 8 ? 0.8 : 1.2).ToArray(),
        };
        var options = new SelectionOptions { StepFraction = 0.25, MinChannels = 8 }; // one block of 8 a step
        var plain = ChannelSelector.Select(analysis, importance, options);
        Assert.Equal([loGroup.Id], plain.Keys);
        var aware = ChannelSelector.Select(analysis, importance, options with { MacAware = true });
        Assert.Equal([hiGroup.Id], aware.Keys);
        Assert.Equal(Enumerable.Range(0, 8), aware[hiGroup.Id]); // still the least important channels of that group
    }

    [Fact]
    public void ProgressKey_OfDefaultOptions_IsWhatEarlierVersionsWrote_SoSavedRunsResume()
    {
        // Saved pruning progress resumes only when this text is unchanged: options added later must not appear at
        // their defaults. The literal is what the toolkit printed before the identity budget and MAC-aware ranking
        // existed (progress saved then was resumed with it).
        var options = new PruneOptions { Target = new PruneTarget(PruneTarget.Macs, 0.45, true), DataDir = "datasets/bundled", Criterion = ImportanceCriterion.Random, FinetuneSteps = 200 };
        var text = IterativePruner.ShapingText(options);
        Assert.Equal("""PruneOptions { Target = any ≤ 1 × original, DataDir = datasets/bundled, Criterion = Random, Selection = SelectionOptions { StepFraction = 0.1, MinChannels = 8, ChannelMultiple = 8, Skip = System.Collections.Generic.HashSet`1[System.String] }, ImportanceBatches = 4, FinetuneSteps = 200, BatchSize = 8, LearningRate = 0.0001, Distill = True, MaxPsnrDropDb = Infinity, EvalPairs = 64, MaxSteps = 50, Seed = 1, TrainLimit = , ProgressDir =  }""", text);
        Assert.Equal(text + ":mac_aware", IterativePruner.ShapingText(options with { Selection = options.Selection with { MacAware = true } }));
        Assert.Contains("MaxIdentityDrop = 0.02", IterativePruner.ShapingText(options with { MaxIdentityDrop = 0.02 }));
        Assert.Equal(text, IterativePruner.ShapingText(options with { MaxPsnrDropDb = 3, Target = new PruneTarget(PruneTarget.Params, 0.3, true) }));
    }

    [Fact]
    public void Importance_L1AndTaylorAndRandom()
    {
        var g = new GraphBuilder("tiny", 8);
        var x = g.ImageInput("image", 2);
        var c1 = g.Conv("c1", x, 3, kernel: 1);
        g.Output("out", g.Conv("c2", c1, 1, kernel: 1));
        using var model = new GraphModule(g.Build());
        using (no_grad())
        {
            model.state_dict()["c1.weight"].copy_(tensor(new float[] { 1, -1, 0.5f, 0, -3, 1 }, [3, 2, 1, 1]));
            model.state_dict()["c2.weight"].copy_(tensor(new float[] { 1, 1, 1 }, [1, 3, 1, 1]));
        }
        var analysis = new ChannelAnalysis(model.Graph);
        int id = analysis.Groups.Single(gr => gr.Prunable).Id;
        Assert.Equal([2.0, 0.5, 4.0], Importance.Compute(model, analysis, ImportanceCriterion.L1)[id]);

        var input = full(1, 2, 8, 8, 1f);
        var taylor = Importance.Compute(model, analysis, ImportanceCriterion.Taylor, _ => model.call(new Dictionary<string, Tensor> { ["image"] = input })["out"].sum(), batches: 2)[id];
        // L = Σ c2·(c1·x) over 64 positions: for channel k, Σ w·∂L/∂w over c1 row k and c2 column k = 2·64·(row sum).
        Assert.Equal(new[] { 0.0, 2 * 64 * 0.5, 2 * 64 * 2.0 }, taylor, (a, b) => Math.Abs(a - b) < 1e-3);
        var r1 = Importance.Compute(model, analysis, ImportanceCriterion.Random, seed: 5)[id];
        Assert.Equal(r1, Importance.Compute(model, analysis, ImportanceCriterion.Random, seed: 5)[id]);
    }

    [Theory]
    [InlineData("macs", "0.6", 0.6, true)]
    [InlineData("macs", "1.2G", 1.2e9, false)]
    [InlineData("params", "800k", 8e5, false)]
    [InlineData("latency_ms", "8ms", 8, false)]
    public void Targets_Parse(string metric, string text, double value, bool fraction)
    {
        var t = PruneTarget.Parse(metric, text);
        Assert.Equal(value, t.Value, 6);
        Assert.Equal(fraction, t.IsFraction);
        Assert.Throws<FormatException>(() => PruneTarget.Parse(metric, "lots"));
    }

    [Fact]
    public void IterativePruning_MakesAGenuinelySmallerModelAndLogsSteps()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var options = new PruneOptions
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.85"), DataDir = TinyDataset.Path, FinetuneSteps = 2, BatchSize = 4,
            EvalPairs = 4, MaxPsnrDropDb = 100, ImportanceBatches = 2,
        };
        var (pruned, steps, outcome) = new IterativePruner(options, identity).Run(model);
        using (pruned)
        {
            Assert.Equal("target reached", outcome);
            Assert.Equal("baseline", steps[0].Action);
            Assert.All(steps.Skip(1), s => Assert.Equal("accepted", s.Action));
            Assert.True(steps[^1].Macs <= 0.85 * steps[0].Macs);
            Assert.Equal(ModelSummary.Of(pruned.Graph, 32).Macs, steps[^1].Macs);
            var dir = TestAssets.TempDir();
            IterativePruner.WriteOutputs(dir, pruned, steps, outcome, new Dictionary<string, string>());
            Assert.Equal("step,params,macs,p50_ms,psnr_db,action,id_cosine", File.ReadLines(Path.Combine(dir, "prune_steps.csv")).First());
            Assert.All(steps, s => Assert.Null(s.IdCosine)); // no identity budget: identity not measured
            Assert.True(File.Exists(Path.Combine(dir, "prune_psnr_vs_macs.png")));
            using var reloaded = Checkpoint.Load(dir);
            Assert.Equal(pruned.Graph.ToJson(), reloaded.Graph.ToJson());
        }
    }

    [Fact]
    public void IdentityBudget_IsMeasuredEveryStep_AndAStepBeyondItIsRolledBack()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        PruneOptions Options(double budget) => new()
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.5"), DataDir = TinyDataset.Path, FinetuneSteps = 1, BatchSize = 4,
            EvalPairs = 4, MaxPsnrDropDb = 100, MaxIdentityDrop = budget, ImportanceBatches = 1, MaxSteps = 3,
        };
        // Generous budget: every step measured and within it.
        var (generous, steps, _) = new IterativePruner(Options(10), identity).Run(model);
        generous.Dispose();
        Assert.All(steps, s => Assert.NotNull(s.IdCosine));
        Assert.Equal("accepted", steps[1].Action);
        Assert.NotEqual(steps[0].IdCosine, steps[1].IdCosine); // measured on the pruned model, not carried over from the baseline
        // A budget no step can meet (identity would have to rise by a whole unit of cosine): the first step is rolled
        // back with the same identity the generous run measured for it (same seed), and the outcome says why.
        var (tight, tightSteps, outcome) = new IterativePruner(Options(-1), identity).Run(model);
        using (tight)
        {
            Assert.Equal("rolled_back", tightSteps[1].Action);
            Assert.Equal(steps[1].IdCosine!.Value, tightSteps[1].IdCosine!.Value, 5);
            Assert.Contains("identity cosine", outcome);
            Assert.Equal(ModelSummary.Of(model.Graph, 32).Macs, ModelSummary.Of(tight.Graph, 32).Macs); // nothing kept
        }
        // Progress saved before identity was recorded still loads (IdCosine null), so such runs resume.
        var saved = System.Text.Json.JsonSerializer.Deserialize<List<PruneStep>>("""[{"Step":0,"Params":1,"Macs":2,"P50Ms":3.5,"PsnrDb":30.1,"Action":"baseline"}]""")!;
        Assert.Equal(("baseline", (double?)null), (saved[0].Action, saved[0].IdCosine));
    }

    [Fact]
    public void InterruptedPruning_ContinuesAfterItsLastAcceptedStep_ToTheUninterruptedResult()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        PruneOptions Options(string progress) => new()
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.75"), DataDir = TinyDataset.Path, FinetuneSteps = 2, BatchSize = 4,
            EvalPairs = 4, MaxPsnrDropDb = 100, ImportanceBatches = 2, Selection = new SelectionOptions { StepFraction = 0.05 }, ProgressDir = progress,
        };
        var (straight, straightSteps, _) = new IterativePruner(Options(Path.Combine(TestAssets.TempDir(), "a")), identity).Run(model);
        using (straight)
        {
            Assert.True(straightSteps.Count >= 3, $"{straightSteps.Count} steps: the test needs an interruption point");
            // A crash right after step 1 was accepted (and saved)…
            var progress = Path.Combine(TestAssets.TempDir(), "b");
            Assert.Throws<InvalidOperationException>(() => new IterativePruner(Options(progress), identity).Run(model,
                new SynchronousProgress(s => { if (s.Action == "accepted") throw new InvalidOperationException("killed"); })));
            Assert.True(File.Exists(Path.Combine(progress, "progress.json")));
            // …and the re-run continues from step 2, ending where the uninterrupted run ended.
            var reported = new List<PruneStep>();
            var (resumed, resumedSteps, outcome) = new IterativePruner(Options(progress), identity).Run(model, new SynchronousProgress(reported.Add));
            using (resumed)
            {
                Assert.Equal("target reached", outcome);
                Assert.Equal(straightSteps.Select(s => (s.Step, s.Macs, s.Action)), resumedSteps.Select(s => (s.Step, s.Macs, s.Action)));
                var stateB = resumed.state_dict();
                foreach (var (key, value) in straight.state_dict())
                    Assert.True(value.to_type(ScalarType.Float64).sub(stateB[key].to_type(ScalarType.Float64)).abs().max().item<double>() <= 1e-5, key);
            }
        }
    }

    [Fact]
    public void SavedProgress_ContinuesToASmallerTarget_AndStartsOverForOneAnEarlierStepMet()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var progress = Path.Combine(TestAssets.TempDir(), "p");
        PruneOptions Options(string target) => new()
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, target), DataDir = TinyDataset.Path, FinetuneSteps = 1, BatchSize = 2,
            EvalPairs = 4, MaxPsnrDropDb = 100, ImportanceBatches = 1, Selection = new SelectionOptions { StepFraction = 0.05 }, ProgressDir = progress,
        };
        var (first, firstSteps, _) = new IterativePruner(Options("0.85"), identity).Run(model);
        first.Dispose();
        // The steps do not depend on the target: a smaller one picks up after the saved steps (same values, no recomputation).
        var (further, furtherSteps, outcome) = new IterativePruner(Options("0.7"), identity).Run(model);
        using (further)
        {
            Assert.Equal("target reached", outcome);
            Assert.True(furtherSteps.Count > firstSteps.Count);
            Assert.Equal(firstSteps, furtherSteps.Take(firstSteps.Count));
            Assert.True(furtherSteps[^1].Macs <= 0.7 * furtherSteps[0].Macs);
        }
        // A larger target that an earlier saved step already met cannot reuse the last step's weights: it starts over
        // and stops at the first step that meets it.
        double firstRatio = (double)furtherSteps[1].Macs / furtherSteps[0].Macs;
        var (back, backSteps, _) = new IterativePruner(Options((firstRatio + 0.001).ToString(System.Globalization.CultureInfo.InvariantCulture)), identity).Run(model);
        using (back)
        {
            Assert.Equal(2, backSteps.Count);
            Assert.Equal(furtherSteps[1].Macs, backSteps[1].Macs);
            Assert.Equal(ModelSummary.Of(back.Graph, 32).Macs, backSteps[1].Macs);
        }
    }

    [Fact]
    public void SavedProgress_IsReusedUnderALooserDropBudget_AndNotUnderOneASavedStepExceeds()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var progress = Path.Combine(TestAssets.TempDir(), "p");
        PruneOptions Options(double budget) => new()
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.8"), DataDir = TinyDataset.Path, FinetuneSteps = 1, BatchSize = 2,
            EvalPairs = 4, MaxPsnrDropDb = budget, ImportanceBatches = 1, Selection = new SelectionOptions { StepFraction = 0.05 }, ProgressDir = progress,
        };
        var (first, firstSteps, _) = new IterativePruner(Options(100), identity).Run(model);
        first.Dispose();
        var drops = firstSteps.Where(s => s.Action == "accepted").Select(s => firstSteps[0].PsnrDb - s.PsnrDb).ToList();
        Assert.True(drops.Count >= 2, $"{drops.Count} steps: the test needs several");
        // Any budget the saved steps stay within continues them: the same records, measured latencies included.
        var (looser, looserSteps, looserOutcome) = new IterativePruner(Options(drops.Max() + 0.5), identity).Run(model);
        looser.Dispose();
        Assert.Equal("target reached", looserOutcome);
        Assert.Equal(firstSteps, looserSteps);
        // A budget one saved step exceeds cannot keep the last step's weights: the run starts over and stops there.
        var (tighter, tighterSteps, tighterOutcome) = new IterativePruner(Options(drops.Max() - 0.05), identity).Run(model);
        using (tighter)
        {
            Assert.StartsWith("stopped at step", tighterOutcome);
            Assert.Contains(tighterSteps, s => s.Action == "rolled_back");
            Assert.True(tighterSteps.Count(s => s.Action == "accepted") < drops.Count);
        }
    }

    [Fact]
    public void RecoveryFineTuning_TrainsThePrunedModel_LogsIt_AndARerunReloadsItsSavedWeights()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var progress = Path.Combine(TestAssets.TempDir(), "p");
        var options = new PruneOptions
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.85"), DataDir = TinyDataset.Path, FinetuneSteps = 1, BatchSize = 2,
            EvalPairs = 4, MaxPsnrDropDb = 100, ImportanceBatches = 1, ProgressDir = progress,
        };
        var pruner = new IterativePruner(options, identity);
        var (pruned, steps, _) = pruner.Run(model);
        using (pruned)
        {
            var architecture = pruned.Graph.ToJson();
            var before = pruned.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            int logged = steps.Count;
            pruner.Recover(pruned, model, 4, steps, saveEvery: 2);
            Assert.Equal(logged + 1, steps.Count);
            Assert.Equal("finetuned", steps[^1].Action);
            Assert.Equal(steps[^2].Step + 1, steps[^1].Step);
            Assert.Equal(steps[^2].Macs, steps[^1].Macs);
            Assert.Equal(architecture, pruned.Graph.ToJson());
            Assert.Contains(before, kv => !kv.Value.allclose(pruned.state_dict()[kv.Key]));
            Assert.Contains("\"done\":4", File.ReadAllText(Path.Combine(progress + ".recovery", "progress.json")));

            // The same pruning re-run finds the finished recovery and loads its weights instead of training again.
            var (again, againSteps, _) = pruner.Run(model);
            using (again)
            {
                Assert.False(again.state_dict().All(kv => kv.Value.allclose(pruned.state_dict()[kv.Key])));
                var reports = new List<string>();
                pruner.Recover(again, model, 4, againSteps, new SynchronousStringProgress(reports.Add));
                Assert.Contains(reports, r => r.Contains("continuing after step 4 of 4"));
                Assert.All(again.state_dict(), kv => Assert.True(kv.Value.allclose(pruned.state_dict()[kv.Key]), kv.Key));
                Assert.Equal(steps[^1] with { P50Ms = 0 }, againSteps[^1] with { P50Ms = 0 });
            }
        }
    }

    private sealed class SynchronousStringProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }

    private sealed class SynchronousProgress(Action<PruneStep> report) : IProgress<PruneStep>
    {
        public void Report(PruneStep value) => report(value);
    }

    [Fact]
    public void IterativePruning_RollsBackAStepOverTheBudget()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        using var identity = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var options = new PruneOptions
        {
            Target = PruneTarget.Parse(PruneTarget.Macs, "0.3"), DataDir = TinyDataset.Path, FinetuneSteps = 0, EvalPairs = 4,
            MaxPsnrDropDb = -1, // any step "drops" more than a negative budget: the first is rolled back
            ImportanceBatches = 1, BatchSize = 2, Criterion = ImportanceCriterion.L1,
        };
        var (pruned, steps, outcome) = new IterativePruner(options, identity).Run(model);
        using (pruned)
        {
            Assert.Equal(["baseline", "rolled_back", "stopped"], steps.Select(s => s.Action));
            Assert.Contains("rolled back", outcome);
            Assert.Equal(model.Graph.ToJson(), pruned.Graph.ToJson()); // the last accepted state is the original
        }
    }

    [Fact]
    public void Sensitivity_MeasuresEachGroupAloneAndAllocatesABudget()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var analysis = new ChannelAnalysis(model.Graph);
        var importance = Importance.Compute(model, analysis, ImportanceCriterion.L1);
        var rows = Sensitivity.Measure(model, importance, TinyDataset.Path, [0.25, 0.5], evalPairs: 4);
        long original = ModelSummary.Of(model.Graph, 32).Macs;
        foreach (var g in analysis.Groups.Where(g => g.Prunable && g.Size >= 4))
            Assert.Equal(2, rows.Count(r => r.Group == g.Id));
        Assert.All(rows, r => Assert.True(r.Macs < original && r.ChannelsRemoved > 0));
        Assert.All(rows.GroupBy(r => r.Group), g => Assert.True(g.Last().Macs <= g.First().Macs));
        var allocation = Sensitivity.Allocate(rows, original, (long)(0.9 * original));
        Assert.NotEmpty(allocation);
        Assert.Equal(["group", "ratio", "channels_removed", "macs", "psnr_db", "psnr_drop_db"], Sensitivity.Columns);
    }
}
