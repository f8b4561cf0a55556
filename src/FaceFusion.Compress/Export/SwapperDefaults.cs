using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Models.Checkpoints;

namespace FaceFusion.Compress.Export;

/// <summary>The ONNX file a swap runs, and the temporary folder to remove when a checkpoint was exported for it.</summary>
public sealed class ResolvedSwapper(string onnxPath, string name, string? exportFolder) : IDisposable
{
    public string OnnxPath { get; } = onnxPath;
    public string Name { get; } = name;

    public void Dispose()
    {
        if (exportFolder is not null) OwnedFolder.Delete(exportFolder);
    }
}

/// <summary>
/// Which swapper `ffc swap` runs: the one given, else the committed teacher that swaps. When that teacher is absent
/// the command says so instead of falling back to a model that returns the target.
/// </summary>
public static class SwapperDefaults
{
    /// <summary>The default model, relative to the repository root.</summary>
    public const string Folder = "datasets/pretrained/swap-teacher-128";

    /// <summary>
    /// An ONNX path as it is; a checkpoint folder exported (FP32) to a temporary file that the result owns (the caller
    /// disposes the result, which removes it); null: the default <see cref="Folder"/> under
    /// <paramref name="repositoryRoot"/> (the clone this runs from when null).
    /// </summary>
    public static ResolvedSwapper Resolve(string? model, string? repositoryRoot = null)
    {
        if (model is null)
        {
            var folder = Path.Combine(repositoryRoot ?? AssetPaths.FindRepositoryRoot() ?? Directory.GetCurrentDirectory(), Folder);
            if (!File.Exists(Path.Combine(folder, "graph.json")))
                throw new FileNotFoundException($"{Folder}: no model that swaps is present, so none is used by default (the swapping teacher has not been committed yet; " +
                    "datasets/pretrained/teacher-128 returns the target, see docs/results/swap-judge). Pass --model SWAPPER.onnx or a checkpoint folder");
            model = folder;
        }
        if (File.Exists(model)) return new ResolvedSwapper(model, Path.GetFileName(model), null);
        if (!Directory.Exists(model)) throw new FileNotFoundException($"{model}: no such ONNX file or checkpoint folder");
        var exportFolder = Path.Combine(Path.GetTempPath(), $"ffc-swap-{Environment.ProcessId}-{Guid.NewGuid():N}");
        OwnedFolder.Create(exportFolder, "swap (temporary export)");
        try
        {
            var onnx = Path.Combine(exportFolder, Path.GetFileName(Path.TrimEndingDirectorySeparator(model)) + ".onnx");
            using var module = Checkpoint.Load(model);
            module.eval();
            OnnxExporter.ExportToFile(module, onnx, new ExportOptions { MergeSiblingConvs = true, Metadata = new Dictionary<string, string> { ["source_checkpoint"] = Path.GetFullPath(model) } });
            return new ResolvedSwapper(onnx, Path.GetFileName(Path.TrimEndingDirectorySeparator(model)), exportFolder);
        }
        catch
        {
            OwnedFolder.Delete(exportFolder);
            throw;
        }
    }
}
