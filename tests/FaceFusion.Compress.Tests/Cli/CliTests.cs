using System.Diagnostics;

namespace FaceFusion.Compress.Tests.Cli;

/// <summary>Runs the real `ffc` program (copied beside the tests) as a user would.</summary>
public class CliTests
{
    internal static (int Code, string Output) Ffc(params string[] args) => FfcWith(new Dictionary<string, string>(), args);

    /// <summary>Runs `ffc` with extra environment variables.</summary>
    internal static (int Code, string Output) FfcWith(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "ffc.dll"), .. args], environment);

    /// <summary>Runs a program to the end; returns its exit code and its stdout followed by its stderr.</summary>
    internal static (int Code, string Output) Run(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "200";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    [Fact]
    public void Help_ListsCommandsWithDescriptions()
    {
        var (code, output) = Ffc("--help");
        Assert.Equal(0, code);
        Assert.Contains("data", output);
        var (code2, dataHelp) = Ffc("data", "--help");
        Assert.Equal(0, code2);
        Assert.Contains("prepare", dataHelp);
        Assert.Contains("stats", dataHelp);
        Assert.Contains("contact sheet", dataHelp);
    }

    [Theory]
    [InlineData("info")] [InlineData("train")] [InlineData("export")] [InlineData("bench")] [InlineData("prune")] [InlineData("run")]
    [InlineData("swap")] [InlineData("distill")] [InlineData("ptq")] [InlineData("qat")] [InlineData("sensitivity")] [InlineData("report")]
    [InlineData("recommend")] [InlineData("benchmark", "latency")] [InlineData("benchmark", "prune")] [InlineData("benchmark", "ablation")] [InlineData("benchmark", "swap")] [InlineData("benchmark", "train")] [InlineData("data", "prepare")] [InlineData("data", "stats")]
    public void EveryCommandsHelp_Renders(params string[] command)
    {
        // Descriptions are console markup: an unescaped bracket breaks the help page.
        var (code, output) = Ffc([.. command, "--help"]);
        Assert.True(code == 0 && !output.Contains("error:"), output);
        Assert.Contains("USAGE", output);
    }

    [Fact]
    public void Stats_OnAMissingDataset_FailsNamingTheFile()
    {
        var dir = Path.Combine(TestAssets.TempDir(), "none");
        var (code, output) = Ffc("data", "stats", "--data", dir);
        Assert.NotEqual(0, code);
        Assert.Contains("manifest.csv", output);
        Assert.Contains("ffc data prepare", output);
    }

    [Fact]
    public void Prepare_RejectsBadSizes()
    {
        var (code, output) = Ffc("data", "prepare", "--sizes", "12,abc");
        Assert.NotEqual(0, code);
        Assert.Contains("--sizes", output);
    }

    [Fact]
    public void Info_Json_HasParamsMacsAndNodes()
    {
        var (code, output) = Ffc("info", "student", "--resolution", "64", "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var root = doc.RootElement;
        long parameters = root.GetProperty("params").GetInt64();
        long macs = root.GetProperty("macs").GetInt64();
        var nodes = root.GetProperty("nodes").EnumerateArray().ToList();
        Assert.True(parameters > 0 && macs > 0);
        Assert.Equal(parameters, nodes.Sum(n => n.GetProperty("params").GetInt64()));
        Assert.Equal(macs, nodes.Sum(n => n.GetProperty("macs").GetInt64()));
        Assert.Contains(nodes, n => n.GetProperty("kind").GetString() == "attention_fusion");
        Assert.All(nodes, n => Assert.False(string.IsNullOrEmpty(n.GetProperty("name").GetString())));
    }

    [Fact]
    public void Info_Table_ShowsTheRatioToTheTeacher()
    {
        var (code, output) = Ffc("info", "student");
        Assert.Equal(0, code);
        Assert.Contains("vs built-in teacher at 128", output);
        Assert.Contains("total", output);
        var (bad, message) = Ffc("info", "no-such-model");
        Assert.NotEqual(0, bad);
        Assert.Contains("no-such-model", message);
        Assert.Contains("teacher, student", message);
    }

    [Fact]
    public void Prune_NeedsExactlyOneTarget_AndListsGroups()
    {
        var (code, output) = Ffc("prune", "student", "-o", Path.Combine(TestAssets.TempDir(), "p"));
        Assert.NotEqual(0, code);
        Assert.Contains("--target-macs", output);
        var (groups, table) = Ffc("prune", "groups", "student", "--resolution", "64");
        Assert.Equal(0, groups);
        Assert.Contains("prunable channels", table);
    }
}
