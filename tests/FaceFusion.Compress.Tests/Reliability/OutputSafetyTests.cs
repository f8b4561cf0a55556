using System.Diagnostics;
using System.Security.Cryptography;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Tests.Cli;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>
/// The attacks of issue 26 on what the toolkit writes and deletes, each reproduced: a victim outside the output keeps
/// its SHA-256, the command fails with a non-zero exit code and one `error:` line naming the offending path.
/// </summary>
public class OutputSafetyTests
{
    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>SHA-256 over every file under <paramref name="dir"/> with its relative path: changes when anything inside does.</summary>
    private static string TreeSha(string dir) => string.Join(";", Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
        .Order(StringComparer.Ordinal).Select(f => $"{Path.GetRelativePath(dir, f)}={Sha(f)}"));

    private static string Victim(string dir, string name = "victim.txt")
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, "precious, not the toolkit's\n");
        return path;
    }

    /// <summary>Exactly one `error:` line, which names <paramref name="path"/>, and no stack trace.</summary>
    private static void AssertOneErrorLine(string output, string path)
    {
        var errors = output.Split('\n').Where(l => l.StartsWith("error:")).ToList();
        Assert.True(errors.Count == 1, output);
        Assert.Contains(path, errors[0]);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public void Export_NeverWritesThroughASymlinkAtTheTempOrTheFinalName()
    {
        var root = TestAssets.TempDir();
        var victim = Victim(root);
        var before = Sha(victim);
        var outDir = Directory.CreateDirectory(Path.Combine(root, "out")).FullName;

        // The old fixed temp name, planted: the unique exclusive temp file ignores it; the model lands in a regular file.
        var model = Path.Combine(outDir, "m.onnx");
        File.CreateSymbolicLink(model + ".partial", victim);
        var (code, text) = CliTests.Ffc("export", "student", "-r", "32", "-o", model);
        Assert.True(code == 0, text);
        Assert.Equal(before, Sha(victim));
        Assert.Null(new FileInfo(model).LinkTarget);
        Assert.True(new FileInfo(model).Length > 1000);

        // A link at the final name: refused, the link and its target untouched.
        var linked = Path.Combine(outDir, "l.onnx");
        File.CreateSymbolicLink(linked, victim);
        (code, text) = CliTests.Ffc("export", "student", "-r", "32", "-o", linked);
        Assert.Equal(1, code);
        AssertOneErrorLine(text, linked);
        Assert.Contains("symbolic link", text);
        Assert.Equal(before, Sha(victim));
        Assert.NotNull(new FileInfo(linked).LinkTarget);
        Assert.Empty(Directory.GetFiles(outDir, "*.partial").Where(f => new FileInfo(f).LinkTarget is null));
    }

    [Fact]
    public void CsvAppends_AndAtomicWrites_RefuseASymlinkedFile()
    {
        var root = TestAssets.TempDir();
        var victim = Victim(root);
        var before = Sha(victim);
        var dir = Directory.CreateDirectory(Path.Combine(root, "bench")).FullName;
        var csv = Path.Combine(dir, BenchReport.BenchCsv);
        File.CreateSymbolicLink(csv, victim);
        // `ffc bench -o DIR` appends its rows through CsvAppend.
        var e = Assert.Throws<UnsafeOutputException>(() => CsvAppend.Append(csv, new[] { new { a = 1 } }));
        Assert.StartsWith(csv, e.Message);
        Assert.Throws<UnsafeOutputException>(() => AtomicFile.WriteAllText(csv, "x"));
        Assert.Throws<UnsafeOutputException>(() => AtomicFile.AppendAllText(csv, "x"));
        Assert.Throws<UnsafeOutputException>(() => AtomicFile.WriteAllText(dir, "a folder is no file"));
        Assert.Equal(before, Sha(victim));
        Assert.True(Directory.Exists(dir));
    }

    private static string FacesInput(string root)
    {
        var input = Directory.CreateDirectory(Path.Combine(root, "faces", "audrey")).FullName;
        File.Copy(TestAssets.Still("audrey.jpg"), Path.Combine(input, "audrey.jpg"));
        return Path.GetDirectoryName(input)!;
    }

    [Fact]
    public void DataPrepare_OnAFolderItDidNotMake_RefusesAndLeavesItUntouched()
    {
        var root = TestAssets.TempDir();
        var input = FacesInput(root);
        var output = Directory.CreateDirectory(Path.Combine(root, "v")).FullName;
        Directory.CreateDirectory(Path.Combine(output, "sub"));
        Victim(output, "precious.txt");
        var before = TreeSha(output);

        foreach (var force in new[] { false, true })
        {
            var (code, text) = CliTests.Ffc(["data", "prepare", "--input", input, "--sizes", "64", "-o", output, .. force ? new[] { "--force" } : []]);
            Assert.Equal(1, code);
            AssertOneErrorLine(text, output);
            Assert.Contains($"error: {output}: exists", text);
            Assert.Equal(before, TreeSha(output));
            Assert.True(Directory.Exists(Path.Combine(output, "sub")));
        }

        // --force takes an empty folder; the result is marked as the toolkit's and may then be replaced.
        var empty = Directory.CreateDirectory(Path.Combine(root, "empty")).FullName;
        var (ok, okText) = CliTests.Ffc("data", "prepare", "--input", input, "--sizes", "64", "-o", empty, "--force");
        Assert.True(ok == 0, okText);
        Assert.True(OwnedFolder.IsOwned(empty));
        (ok, okText) = CliTests.Ffc("data", "prepare", "--input", input, "--sizes", "64", "-o", empty, "--force");
        Assert.True(ok == 0, okText);
        Assert.True(File.Exists(Path.Combine(empty, "manifest.csv")));
    }

    [Fact]
    public void OwnedFolder_DeletesOnlyMarkedFolders_AndNeverThroughALink()
    {
        var root = TestAssets.TempDir();
        var victimDir = Directory.CreateDirectory(Path.Combine(root, "victim")).FullName;
        Victim(victimDir);
        var before = TreeSha(victimDir);
        Assert.Throws<UnsafeOutputException>(() => OwnedFolder.Delete(victimDir));
        var link = Path.Combine(root, "link");
        Directory.CreateSymbolicLink(link, victimDir);
        Assert.Throws<UnsafeOutputException>(() => OwnedFolder.Delete(link));
        Assert.Throws<UnsafeOutputException>(() => OwnedFolder.DeleteChild(root, "link"));
        Assert.Throws<UnsafeOutputException>(() => OwnedFolder.DeleteChild(root, ".."));
        Assert.Throws<UnsafeOutputException>(() => OwnedFolder.DeleteChild(root, victimDir));
        Assert.Equal(before, TreeSha(victimDir));

        var mine = Path.Combine(root, "mine");
        OwnedFolder.Create(mine, "test");
        OwnedFolder.Delete(mine);
        Assert.False(Directory.Exists(mine));
    }

    /// <summary>A recipe whose inputs exist (an empty manifest and teacher folder are enough to parse and start a run).</summary>
    private static (string Recipe, string Artifacts) RecipeWith(string root, string name)
    {
        var data = Directory.CreateDirectory(Path.Combine(root, "data")).FullName;
        File.WriteAllText(Path.Combine(data, "manifest.csv"), "");
        var teacher = Directory.CreateDirectory(Path.Combine(root, "teacher")).FullName;
        var recipe = Path.Combine(root, "r.yaml");
        File.WriteAllText(recipe, $"name: '{name}'\ndata: {data}\nteacher: {teacher}\nstages:\n  - stage: export\n");
        return (recipe, Directory.CreateDirectory(Path.Combine(root, "artifacts")).FullName);
    }

    [Theory]
    [InlineData("../..")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("ABSOLUTE")]
    public void RecipeName_ThatIsNotOneFolderName_IsRefusedNamingTheFileAndTheValue(string name)
    {
        var root = TestAssets.TempDir();
        var victimDir = Directory.CreateDirectory(Path.Combine(root, "victim")).FullName;
        Victim(victimDir);
        Directory.CreateDirectory(Path.Combine(victimDir, "01-export"));
        var before = TreeSha(victimDir);
        if (name == "ABSOLUTE") name = victimDir;
        var (recipe, artifacts) = RecipeWith(root, name);
        var (code, text) = CliTests.Ffc("run", recipe, "--artifacts", artifacts, "--rerun", "export");
        Assert.Equal(2, code);
        AssertOneErrorLine(text, recipe);
        Assert.Contains($"name '{name}'", text);
        Assert.Equal(before, TreeSha(victimDir));
        Assert.True(Directory.Exists(Path.Combine(victimDir, "01-export")));
        Assert.Throws<RecipeException>(() => RecipeParser.Load(recipe));
    }

    [Fact]
    public void RunJson_WithAStageNamedByAnAbsolutePath_IsRefusedBeforeAnyDeletion()
    {
        var root = TestAssets.TempDir();
        var victimDir = Directory.CreateDirectory(Path.Combine(root, "victim")).FullName;
        Victim(victimDir);
        var before = TreeSha(victimDir);
        var (recipe, artifacts) = RecipeWith(root, "hostile");
        var hostile = $"{{\"inputs_hash\": \"other\", \"stages\": [{{\"name\": \"{victimDir}\", \"status\": \"done\"}}]}}";

        // This run's own run.json: its stage names are deleted when --reuse-from finds the inputs changed.
        var runDir = Directory.CreateDirectory(Path.Combine(artifacts, "hostile")).FullName;
        var manifest = Path.Combine(runDir, "run.json");
        File.WriteAllText(manifest, hostile);
        var other = Directory.CreateDirectory(Path.Combine(root, "other")).FullName;
        File.WriteAllText(Path.Combine(other, "run.json"), "{\"stages\": []}");
        var (code, text) = CliTests.Ffc("run", recipe, "--artifacts", artifacts, "--reuse-from", other);
        Assert.Equal(1, code);
        AssertOneErrorLine(text, manifest);
        Assert.Contains("stage name", text);
        Assert.Equal(before, TreeSha(victimDir));

        // The --reuse-from run's run.json, the same.
        File.Delete(manifest);
        File.WriteAllText(Path.Combine(other, "run.json"), hostile);
        (code, text) = CliTests.Ffc("run", recipe, "--artifacts", artifacts, "--reuse-from", other);
        Assert.Equal(2, code);
        AssertOneErrorLine(text, Path.Combine(other, "run.json"));
        Assert.Equal(before, TreeSha(victimDir));
    }

    [Fact]
    public void Export_ToAnOutputInUse_WaitsOrWithNoWaitStopsNamingTheHolder()
    {
        var root = TestAssets.TempDir();
        var model = Path.Combine(root, "m.onnx");
        Victim(root, "m.onnx"); // what is there now must stay whole while another process holds the output
        var before = Sha(model);
        using (var held = OutputLock.ForPath(model))
        {
            var (code, text) = CliTests.Ffc("export", "student", "-r", "32", "-o", model, "--no-wait");
            Assert.Equal(1, code);
            AssertOneErrorLine(text, model);
            Assert.Contains($"is in use by process {Environment.ProcessId}", text);
            Assert.Equal(before, Sha(model));

            // Without --no-wait the second writer waits for the holder instead of writing beside it.
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "ffc.dll"), "export", "student", "-r", "32", "-o", model }) psi.ArgumentList.Add(a);
            psi.Environment["COLUMNS"] = "200";
            using var waiting = Process.Start(psi)!;
            var output = waiting.StandardOutput.ReadToEndAsync();
            var errors = waiting.StandardError.ReadToEndAsync();
            Assert.False(waiting.WaitForExit(TimeSpan.FromSeconds(6)), output.IsCompleted ? output.Result + errors.Result : "exited early");
            Assert.Equal(before, Sha(model));
            held.Dispose();
            Assert.True(waiting.WaitForExit(TimeSpan.FromSeconds(120)));
            Assert.True(waiting.ExitCode == 0, output.Result + errors.Result);
        }
        Assert.NotEqual(before, Sha(model));
    }

    private static Process StartFfc(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Prepend(Path.Combine(AppContext.BaseDirectory, "ffc.dll"))) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "200";
        return Process.Start(psi)!;
    }

    [Fact]
    public void TwoConcurrentExports_ToOneOutput_LeaveTheLastWritersWholeModel()
    {
        var root = TestAssets.TempDir();
        var checkpoint = Path.Combine(root, "model");
        using (var m = Export.ExportParityTests.Prepared(FaceFusion.Compress.Models.Architectures.SwapperArchitectures.Student(32))) FaceFusion.Compress.Models.Checkpoints.Checkpoint.Save(checkpoint, m);
        var expected = new Dictionary<string, string>();
        foreach (var precision in new[] { "fp32", "fp16" })
        {
            var reference = Path.Combine(root, $"{precision}.onnx");
            var (code, text) = CliTests.Ffc("export", checkpoint, "--precision", precision, "-o", reference);
            Assert.True(code == 0, text);
            expected[precision] = Sha(reference);
        }
        Assert.NotEqual(expected["fp32"], expected["fp16"]);

        var output = Path.Combine(root, "out", "m.onnx");
        var runs = new[] { "fp32", "fp16" }.Select(p => (Precision: p, Process: StartFfc("export", checkpoint, "--precision", p, "-o", output))).ToList();
        var texts = runs.Select(r => (r.Precision, Out: r.Process.StandardOutput.ReadToEndAsync(), Err: r.Process.StandardError.ReadToEndAsync())).ToList();
        var exited = new List<string>();
        while (exited.Count < 2)
        {
            foreach (var (precision, process) in runs.Where(r => !exited.Contains(r.Precision) && r.Process.WaitForExit(20))) exited.Add(precision);
        }
        foreach (var (precision, process) in runs)
        {
            var t = texts.First(x => x.Precision == precision);
            Assert.True(process.ExitCode == 0, t.Out.Result + t.Err.Result);
            Assert.Matches($@"opset \d+, {precision}\b", t.Out.Result);
            process.Dispose();
        }
        // One writer at a time: the file is whole, and it is the model of the writer that finished last (the one that
        // waited, when they overlapped), never the other's under its name.
        var waited = texts.Where(x => x.Out.Result.Contains("is in use by process")).Select(x => x.Precision).ToList();
        var last = waited.Count == 1 ? waited[0] : exited[^1];
        Assert.Equal(expected[last], Sha(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, "*.partial"));
    }

    [Fact]
    public void DataPrepareAndRun_ToAnOutputInUse_StopWithNoWait()
    {
        var root = TestAssets.TempDir();
        var output = Path.Combine(root, "ds");
        using (OutputLock.ForPath(output))
        {
            var (code, text) = CliTests.Ffc("data", "prepare", "--input", FacesInput(root), "--sizes", "64", "-o", output, "--no-wait");
            Assert.Equal(1, code);
            AssertOneErrorLine(text, output);
            Assert.Contains("is in use by process", text);
            Assert.False(Directory.Exists(output));
        }
        var (recipe, artifacts) = RecipeWith(root, "busy");
        var runner = new RecipeRunner(RecipeParser.Load(recipe), TestAssets.Assets, root, artifacts) { NoWait = true };
        using (OutputLock.ForPath(runner.RunDir))
        {
            var e = Assert.Throws<OutputInUseException>(() => runner.Run());
            Assert.Equal($"{runner.RunDir} is in use by process {Environment.ProcessId}", e.Message);
        }
    }

    [Fact]
    public void Swap_RefusesAnOutputThatIsAnInput_AWrongFormatAndNaN()
    {
        var root = TestAssets.TempDir();
        var target = Path.Combine(root, "target.png");
        File.Copy(TestAssets.Still("audrey.jpg"), target); // bytes only matter for the hash: it is never read
        var before = Sha(target);
        var source = TestAssets.Still("franck_02045.jpg");
        var (code, text) = CliTests.Ffc("swap", "--source", source, "--target", target, "-o", target, "--no-judge");
        Assert.Equal(1, code);
        AssertOneErrorLine(text, target);
        Assert.Contains("--target input", text);
        Assert.Equal(before, Sha(target));

        var jpg = Path.Combine(root, "x.jpg");
        (code, text) = CliTests.Ffc("swap", "--source", source, "--target", target, "-o", jpg, "--no-judge");
        Assert.Equal(1, code);
        AssertOneErrorLine(text, jpg);
        Assert.False(File.Exists(jpg));

        (code, text) = CliTests.Ffc("swap", "--source", source, "--target", target, "-o", Path.Combine(root, "s.png"), "--mask-blur", "NaN");
        Assert.NotEqual(0, code);
        Assert.Contains("--mask-blur", text);
        Assert.False(File.Exists(Path.Combine(root, "s.png")));
    }
}
