using FaceFusion.Compress.Export;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Judging;

/// <summary>`ffc swap`'s own verdict on its output, and its refusal to fall back on a model that does not swap.</summary>
public class SwapVerdictTests
{
    [Theory]
    [InlineData(0.40, 0.70, JudgedPerson.Source)]
    [InlineData(0.55, 0.50, JudgedPerson.Target)]
    [InlineData(0.70, 0.45, JudgedPerson.Target)]
    [InlineData(0.65, 0.80, JudgedPerson.Neither)]
    public void Verdict_CallsTheNearerPersonWithinTheThreshold(double toSource, double toTarget, JudgedPerson expected) =>
        Assert.Equal(expected, new SwapVerdict(toSource, toTarget).Person);

    [Fact]
    public void CopyingTheTarget_IsJudgedTheTargetsPerson_AndTheSourceItself_TheSources()
    {
        var sourceImage = RgbImage.Load(TestAssets.Still("audrey.jpg"));
        var targetImage = RgbImage.Load(TestAssets.Still("franck_02045.jpg"));
        using var judge = new SwapVerdictJudge(TestAssets.Assets);
        var source = judge.DescribeLargestFace(sourceImage)!;
        var target = judge.DescribeLargestFace(targetImage)!;
        Assert.Equal(JudgedPerson.Target, judge.Judge(source, target, targetImage)!.Value.Person);
        Assert.Equal(JudgedPerson.Source, judge.Judge(source, target, sourceImage)!.Value.Person);
        Assert.Null(judge.Judge(source, target, new RgbImage(120, 90)));
    }

    [Fact]
    public void DefaultModel_Absent_IsSaidPlainly_AndACheckpointFolderIsExportedForTheRunOnly()
    {
        var emptyRoot = TestAssets.TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => SwapperDefaults.Resolve(null, emptyRoot));
        Assert.Contains("no model that swaps is present", e.Message);
        Assert.Contains(SwapperDefaults.Folder, e.Message);
        Assert.Throws<FileNotFoundException>(() => SwapperDefaults.Resolve(Path.Combine(emptyRoot, "nothing-here")));

        var checkpoint = Path.Combine(emptyRoot, SwapperDefaults.Folder);
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(checkpoint, model);
        string onnx;
        using (var resolved = SwapperDefaults.Resolve(null, emptyRoot))
        {
            onnx = resolved.OnnxPath;
            Assert.True(File.Exists(onnx));
            Assert.Equal("swap-teacher-128", resolved.Name);
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(onnx);
            Assert.Contains("target", session.InputMetadata.Keys);
        }
        Assert.False(File.Exists(onnx));
    }
}
