using FaceFusion.Compress.Data;
using FaceFusion.Compress.Judging;

namespace FaceFusion.Compress.Tests.Judging;

public class JudgeVerificationTests
{
    private static float[] At(float x) { var d = new float[128]; d[0] = x; return d; }

    [Fact]
    public void Evaluate_CountsEveryPair_AgainstTheThreshold()
    {
        // a0–a1 at 0.5 (same, called same), a0–a2 at 0.7 (same, missed); b at 3.0 from all a's (different, called different);
        // c0 at 0.55 from a0 (different, called same: a false accept).
        var ids = new[] { "a", "a", "a", "b", "c" };
        var d = new[] { At(0), At(0.5f), At(0.7f), At(3.0f), At(-0.55f) };
        var r = JudgeVerification.Evaluate("t", ids, d);
        Assert.Equal(3, r.SamePairs);          // a0a1 a0a2 a1a2 (0.2: called same)
        Assert.Equal(2, r.TruePositives);      // a0a2 at 0.7 missed
        Assert.Equal(7, r.DifferentPairs);     // 3 a×b, 3 a×c, b×c
        Assert.Equal(6, r.TrueNegatives);      // a0×c at 0.55 falsely called same
        Assert.Equal(2.0 / 3, r.Tpr, 9);
        Assert.Equal(6.0 / 7, r.Tnr, 9);
        Assert.Equal(8.0 / 10, r.Accuracy, 9);
        Assert.Equal((0.5 + 0.7 + 0.2) / 3, r.MeanSameDistance, 6);
        Assert.Equal(3, r.Identities);
    }

    [Fact]
    public void SelectFaces_TakesEvenlySpacedTestVideoFaces_AndEveryStill()
    {
        var records = new List<FaceRecord>();
        for (int i = 0; i < 10; i++) records.Add(new FaceRecord { Id = $"v-{i:00}", Identity = "v", Frame = i, Split = i < 5 ? "train" : "test" });
        records.Add(new FaceRecord { Id = "s-0", Identity = "s", Frame = -1, Split = "val" });
        records.Add(new FaceRecord { Id = "s-1", Identity = "s", Frame = -1, Split = "test" });
        var (video, stills) = JudgeVerification.SelectFaces(records, 3);
        Assert.Equal(["v-05", "v-06", "v-08"], video.Select(r => r.Id));
        Assert.Equal(["s-0", "s-1"], stills.Select(r => r.Id));
    }
}
