using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Judging;

/// <summary>Verification counts of the judge on one set of labelled faces: every pair, same person or not.</summary>
public sealed record VerificationResult(string Set, int Faces, int Identities, int SamePairs, int DifferentPairs,
    int TruePositives, int TrueNegatives, double MeanSameDistance, double MeanDifferentDistance)
{
    /// <summary>Share of same-person pairs the judge calls the same person (NaN without such pairs).</summary>
    public double Tpr => SamePairs == 0 ? double.NaN : (double)TruePositives / SamePairs;
    /// <summary>Share of different-person pairs the judge calls different people (NaN without such pairs).</summary>
    public double Tnr => DifferentPairs == 0 ? double.NaN : (double)TrueNegatives / DifferentPairs;
    /// <summary>Correct calls over all pairs (weighted by how many pairs of each kind the set has).</summary>
    public double Accuracy => (double)(TruePositives + TrueNegatives) / Math.Max(1, SamePairs + DifferentPairs);
    /// <summary>Mean of <see cref="Tpr"/> and <see cref="Tnr"/>: accuracy as if both kinds were equally many.</summary>
    public double BalancedAccuracy => (Tpr + Tnr) / 2;
}

/// <summary>
/// The judge's verification accuracy at <see cref="IdentityJudge.SameThreshold"/> on the prepared dataset: every pair
/// of a set of faces is scored, same person when the distance is below 0.6. Video faces come from the `test` split,
/// evenly spaced by id per identity; still-photo faces are all used (the judge never trained on any of them).
/// </summary>
public static class JudgeVerification
{
    /// <summary>Scores every pair of <paramref name="descriptors"/>, labelled by <paramref name="identities"/>.</summary>
    public static VerificationResult Evaluate(string set, IReadOnlyList<string> identities, IReadOnlyList<float[]> descriptors,
        double threshold = IdentityJudge.SameThreshold)
    {
        if (identities.Count != descriptors.Count)
            throw new ArgumentException($"{identities.Count} identities for {descriptors.Count} descriptors");
        int same = 0, different = 0, tp = 0, tn = 0;
        double sameSum = 0, differentSum = 0;
        for (int i = 0; i < descriptors.Count; i++)
            for (int j = i + 1; j < descriptors.Count; j++)
            {
                double d = IdentityJudge.Distance(descriptors[i], descriptors[j]);
                if (identities[i] == identities[j]) { same++; sameSum += d; if (d < threshold) tp++; }
                else { different++; differentSum += d; if (d >= threshold) tn++; }
            }
        return new VerificationResult(set, descriptors.Count, identities.Distinct().Count(), same, different, tp, tn,
            same == 0 ? double.NaN : sameSum / same, different == 0 ? double.NaN : differentSum / different);
    }

    /// <summary>The <paramref name="count"/> closest different-identity pairs (where false accepts come from), closest first.</summary>
    public static List<(int A, int B, double Distance)> ClosestDifferentPairs(IReadOnlyList<string> identities, IReadOnlyList<float[]> descriptors, int count)
    {
        var pairs = new List<(int, int, double)>();
        for (int i = 0; i < descriptors.Count; i++)
            for (int j = i + 1; j < descriptors.Count; j++)
                if (identities[i] != identities[j]) pairs.Add((i, j, IdentityJudge.Distance(descriptors[i], descriptors[j])));
        return pairs.OrderBy(p => p.Item3).Take(count).ToList();
    }

    /// <summary>
    /// Faces of the two sets from a prepared dataset: up to <paramref name="perVideoIdentity"/> `test` video faces per
    /// identity (evenly spaced in id order, deterministic) and every still-photo face. Returns the records per set.
    /// </summary>
    public static (List<FaceRecord> Video, List<FaceRecord> Stills) SelectFaces(IReadOnlyList<FaceRecord> records, int perVideoIdentity)
    {
        if (perVideoIdentity < 2) throw new ArgumentException("at least 2 faces per identity are needed for same-person pairs");
        var video = records.Where(r => r.Frame >= 0 && r.Split == Splits.Test)
            .GroupBy(r => r.Identity).OrderBy(g => g.Key, StringComparer.Ordinal)
            .SelectMany(g =>
            {
                var sorted = g.OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
                int n = Math.Min(perVideoIdentity, sorted.Count);
                return Enumerable.Range(0, n).Select(i => sorted[(int)((long)i * sorted.Count / n)]);
            }).ToList();
        var stills = records.Where(r => r.Frame < 0).OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
        return (video, stills);
    }

    /// <summary>
    /// Judge descriptors of a dataset's aligned crops (arcface_128 template), through the dlib box
    /// (<see cref="IdentityJudge.DescribeCrops"/>), in batches.
    /// </summary>
    public static List<float[]> DescribeRecords(IdentityJudge judge, string datasetDir, IReadOnlyList<FaceRecord> records, int batchSize = 32)
    {
        var result = new List<float[]>(records.Count);
        for (int start = 0; start < records.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var crops = records.Skip(start).Take(batchSize).Select(r => RgbImage.Load(Path.Combine(datasetDir, r.CropFile))).ToList();
            using var descriptors = judge.DescribeCrops(ToCropTensor(crops));
            var values = descriptors.data<float>().ToArray();
            for (int i = 0; i < crops.Count; i++) result.Add(values.AsSpan(i * 128, 128).ToArray());
        }
        return result;
    }

    /// <summary>Square RGB crops of one size as [N,3,R,R] in [−1,1] (the swapper's convention). The caller disposes it.</summary>
    public static Tensor ToCropTensor(IReadOnlyList<RgbImage> crops)
    {
        if (crops.Count == 0) throw new ArgumentException("no crops");
        int r = crops[0].Width;
        var bad = crops.FirstOrDefault(c => c.Width != r || c.Height != r);
        if (bad is not null) throw new ArgumentException($"crops must be square and of one size: {r}x{r} and {bad.Width}x{bad.Height}");
        var bytes = new byte[crops.Count * r * r * 3];
        for (int i = 0; i < crops.Count; i++) Buffer.BlockCopy(crops[i].Pixels, 0, bytes, i * r * r * 3, r * r * 3);
        using var scope = NewDisposeScope();
        var hwc = tensor(bytes, [crops.Count, r, r, 3]).to(float32);
        return hwc.permute(0, 3, 1, 2).div(127.5).sub(1).contiguous().MoveToOuterDisposeScope();
    }
}
