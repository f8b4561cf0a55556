using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Cli;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>Values no run can use are refused at the boundary, each error naming the value.</summary>
public class InputValidationTests
{
    [Fact]
    public void RecipeCounts_ThatAreNegativeOrZero_AreErrorsNamingTheValue()
    {
        var path = Path.Combine(TestAssets.TempDir(), "counts.yaml");
        File.WriteAllText(path, """
            name: counts
            teacher: somewhere
            stages:
              - stage: prune
                target_macs: 0.5
                finetune_steps: -30
              - stage: ptq
                calibration: -1
              - stage: bench
                pairs: 0
              - stage: finetune
                lr: NaN
            """);
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path));
        Assert.Equal(4, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("'finetune_steps' -30 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 8 && x.Message.Contains("'calibration' -1 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 10 && x.Message.Contains("'pairs' 0 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 12 && x.Message.Contains("'lr' must be a finite number, got 'NaN'"));
    }

    [Fact]
    public void NaNOrInfinity_ForAnyFloatingPointOption_IsOneErrorLine()
    {
        var (code, text) = CliTests.Ffc("recommend", TestAssets.TempDir(), "--latency-ms", "NaN");
        Assert.Equal(1, code);
        Assert.Equal("error: --latency-ms NaN: a finite number is needed", text.Trim());
        (code, text) = CliTests.Ffc("recommend", TestAssets.TempDir(), "--size-mb", "Infinity");
        Assert.Equal(1, code);
        Assert.Contains("error: --size-mb Infinity: a finite number is needed", text);
    }
}
