using System.Diagnostics;

namespace FaceFusion.Compress.Tests.Cli;

/// <summary>Runs the real `ffc` program (copied beside the tests) as a user would.</summary>
public class CliTests
{
    internal static (int Code, string Output) Ffc(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ffc.dll"));
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
}
