using FaceFusion.Compress.Data;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Training;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Judging;

/// <summary>The issue-21 swap metrics on constructed cases: each must move the way it claims, and copy-target must score as nothing.</summary>
public class SwapJudgingTests
{
    private static (FaceSwapData Data, JudgePairSet Pairs) HeldIn(int count = 4)
    {
        var data = new FaceSwapData(TinyDataset.Path, Splits.Val, 64);
        var pairs = SwapJudging.HeldInPairs(data, SwapJudging.TrainIdentities(TinyDataset.Path), count);
        return (data, pairs);
    }

    private static SwapJudgeRow Measure(string name, Func<Tensor, Tensor, Tensor> swap)
    {
        var (data, pairs) = HeldIn();
        using (data)
        using (var judge = IdentityJudge.Open(TestAssets.Assets))
        using (var landmarks = new LandmarkDetector(TestAssets.Assets.Landmarks))
            return SwapJudging.Measure(name, swap, data, pairs, judge, landmarks);
    }

    [Fact]
    public void HeldInPairs_GoBothWays_AcrossIdentities_WithAnotherIdentityAsAlternative()
    {
        var (data, pairs) = HeldIn(4);
        using (data)
        {
            Assert.Equal(4, pairs.Count);
            for (int i = 0; i < pairs.Count; i++)
            {
                Assert.NotEqual(data.Records[pairs.Targets[i]].Identity, data.Records[pairs.Sources[i]].Identity);
                Assert.NotEqual(data.Records[pairs.Sources[i]].Identity, data.Records[pairs.AlternativeSources[i]].Identity);
            }
            Assert.Equal(2, pairs.Targets.Select(t => data.Records[t].Identity).Distinct().Count());
            // Two different people on screen (a dataset whose identities share crop files would fail here).
            using var batch = data.Pairs(pairs.Targets, pairs.Sources);
            using var diff = batch.Target.sub(batch.SourceImage).abs().mean();
            Assert.True(diff.item<float>() > 0.05, $"targets and sources are nearly the same pixels ({diff.item<float>()})");
            Assert.Equal(pairs.Targets, SwapJudging.HeldInPairs(data, SwapJudging.TrainIdentities(TinyDataset.Path), 4).Targets); // deterministic
            // The full-frame subset spans the set, so both directions are in it.
            var subset = pairs.Subset(2);
            Assert.Equal(2, subset.Targets.Select(t => data.Records[t].Identity).Distinct().Count());
        }
    }

    [Fact]
    public void CopyTarget_IsNeverTheSource_AndDoesNotDependOnIt()
    {
        var row = Measure(SwapJudging.CopyTarget, SwapJudging.CopyTargetSwap);
        Assert.Equal(0, row.JudgeSourceRate);
        Assert.Equal(1, row.JudgeTargetRate);
        Assert.Equal(0, row.SourceSensitivity!.Value, 9);
        Assert.Equal(0, row.LandmarkNme, 9);
        Assert.Equal(1, row.HfRatio!.Value, 6);
        Assert.True(row.JudgeSourceDist > IdentityJudge.SameThreshold, $"copy-target is {row.JudgeSourceDist} from the source");
    }

    [Fact]
    public void AnOutputThatFollowsTheSource_HasSourceSensitivity()
    {
        // Brightness driven by the source embedding: another source changes the face region.
        var row = Measure("source-tint", (t, s) => t.add(s.mean([1], keepdim: true).view(-1, 1, 1, 1).mul(20)));
        Assert.True(row.SourceSensitivity > 0.05, $"source_sensitivity {row.SourceSensitivity}");
    }

    [Fact]
    public void VerticalStripes_RaiseHfRatio_AndBlurLowersIt()
    {
        var striped = Measure("stripes", (t, _) =>
        {
            var stripes = arange(t.shape[3]).remainder(2).mul(0.3).sub(0.15).to(float32).view(1, 1, 1, -1);
            return t.add(stripes);
        });
        Assert.True(striped.HfRatio > 2, $"striped hf_ratio {striped.HfRatio}");
        var blurred = Measure("blur", (t, _) => nn.functional.avg_pool2d(t, 3, 1, 1, count_include_pad: false));
        Assert.True(blurred.HfRatio < 0.8, $"blurred hf_ratio {blurred.HfRatio}");
    }

    [Fact]
    public void ShiftedOutput_RaisesLandmarkNme()
    {
        var shifted = Measure("shift", (t, _) => t.roll(6, 3));
        Assert.True(shifted.LandmarkNme > 0.08, $"6-px shift at 64 px: landmark_nme {shifted.LandmarkNme}");
    }

    [Fact]
    public void FullFramePath_CopyTarget_IsTheTarget()
    {
        var (data, pairs) = HeldIn(2);
        using (data)
        using (var judge = IdentityJudge.Open(TestAssets.Assets))
        using (var detector = new FaceDetector(TestAssets.Assets.Detector))
        using (var landmarks = new LandmarkDetector(TestAssets.Assets.Landmarks))
        {
            var row = SwapJudging.MeasureFullFrame(SwapJudging.CopyTarget, null, data, pairs, TinyDataset.Path, TestAssets.Assets, judge, detector, landmarks);
            Assert.Equal(SwapJudging.FullFramePath, row.Path);
            Assert.Equal(0, row.JudgeSourceRate);
            Assert.Equal(1, row.JudgeTargetRate);
            Assert.Equal(0, row.LandmarkNme, 9);
            Assert.Null(row.HfRatio);
        }
    }

    [Fact]
    public void Verdicts_NeedBelowThreshold_AndCloserThanTheOther()
    {
        var (source, target) = SwapJudging.Verdicts([0.3, 0.5, 0.7, 0.5, 0.4], [0.8, 0.4, 0.5, 0.5, 0.9]);
        // 0: source hit; 1: closer to the target (target hit); 2: only the target below 0.6; 3: a tie goes to the target; 4: source hit.
        Assert.Equal(2.0 / 5, source, 9);
        Assert.Equal(3.0 / 5, target, 9);
    }

    [Fact]
    public void LandmarkNme_IsTheShiftOverTheOuterEyeCornerDistance()
    {
        var target = Enumerable.Range(0, 68).Select(i => (X: (double)i, Y: 0.0)).ToArray();
        target[36] = (10, 20); target[45] = (50, 20); // 40 px apart
        var output = target.Select(p => (p.X + 3, p.Y + 4)).ToArray(); // 5 px each
        Assert.Equal(5.0 / 40, SwapJudging.LandmarkNme(output, target), 9);
        Assert.Equal(0, SwapJudging.LandmarkNme(target, target));
    }

    [Fact]
    public void LaplacianVariance_AndMeanAbsChange_OnKnownImages()
    {
        using var scope = NewDisposeScope();
        var mask = ones(1, 1, 8, 8);
        Assert.Equal(0, SwapJudging.LaplacianVariance(zeros(1, 3, 8, 8), mask)[0], 9);
        // Columns alternating between luma levels 0 and 255: the Laplacian is ±510 everywhere inside, variance 510².
        var columns = arange(8).remainder(2).to(float32).mul(2).sub(1).view(1, 1, 1, 8).expand(1, 3, 8, 8).contiguous();
        Assert.Equal(510.0 * 510.0, SwapJudging.LaplacianVariance(columns, mask)[0], 0);
        // Change of 0.2 in [−1,1] = 25.5 grey levels, on half the mask's pixels counted.
        var half = zeros(1, 1, 8, 8); half[.., .., 0..4, ..] = ones(1, 1, 4, 8);
        Assert.Equal(25.5, SwapJudging.MeanAbsChange(zeros(1, 3, 8, 8).add(0.2), zeros(1, 3, 8, 8), half)[0], 4);
    }

    [Fact]
    public void DoesNotSwap_WhenWithinATenthOfCopyTarget_PerPairSetAndPath()
    {
        SwapJudgeRow Row(string model, string set, string path, double rate) => new() { Model = model, PairSet = set, Path = path, JudgeSourceRate = rate };
        var rows = new List<SwapJudgeRow>
        {
            Row(SwapJudging.CopyTarget, SwapJudging.HeldIn, SwapJudging.CropPath, 0.0),
            Row("a", SwapJudging.HeldIn, SwapJudging.CropPath, 0.05),
            Row("b", SwapJudging.HeldIn, SwapJudging.CropPath, 0.5),
            Row("c", SwapJudging.HeldIn, SwapJudging.CropPath, 0.1),
            Row(SwapJudging.CopyTarget, SwapJudging.Unseen, SwapJudging.CropPath, 0.3),
            Row("b", SwapJudging.Unseen, SwapJudging.CropPath, 0.35),
        };
        SwapJudging.FlagSwaps(rows);
        Assert.Equal(["baseline", "no", "yes", "no", "baseline", "no"], rows.Select(r => r.Swaps));
        Assert.Contains("**does not swap**", SwapJudging.Markdown(rows));
        Assert.True(SwapJudging.Swaps(0.11, 0.0));
    }
}
