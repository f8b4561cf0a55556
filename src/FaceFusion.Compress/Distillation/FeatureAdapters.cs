using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Distillation;

/// <summary>A student→teacher feature pair and the 1×1 adapter (when channel counts differ) that maps between them.</summary>
public sealed record FeaturePair(string Student, string Teacher, int StudentChannels, int TeacherChannels)
{
    /// <summary>Parses "student_node=teacher_tensor".</summary>
    public static (string Student, string Teacher) Parse(string text)
    {
        var parts = text.Split('=', 2, StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            throw new FormatException($"feature pair '{text}': expected student_node=teacher_tensor");
        return (parts[0], parts[1]);
    }
}

/// <summary>
/// The 1×1 conv adapters of the feature pairs (training-only: they are saved with distillation checkpoints, not with
/// the student). Submodules are named "adapter{i}".
/// </summary>
public sealed class FeatureAdapters : nn.Module<int, Tensor, Tensor>
{
    private readonly ModuleList<Conv2d> adapters = new();
    private readonly int[] _index;

    public IReadOnlyList<FeaturePair> Pairs { get; }

    public FeatureAdapters(IReadOnlyList<FeaturePair> pairs) : base("adapters")
    {
        Pairs = pairs;
        _index = new int[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            _index[i] = -1;
            if (pairs[i].StudentChannels != pairs[i].TeacherChannels)
            {
                _index[i] = adapters.Count;
                adapters.Add(nn.Conv2d(pairs[i].StudentChannels, pairs[i].TeacherChannels, 1));
            }
        }
        RegisterComponents();
    }

    /// <summary>Maps the student feature of pair <paramref name="pair"/> to the teacher's channels (identity when equal).</summary>
    public override Tensor forward(int pair, Tensor studentFeature) =>
        _index[pair] < 0 ? studentFeature.alias() : adapters[_index[pair]].call(studentFeature);
}
