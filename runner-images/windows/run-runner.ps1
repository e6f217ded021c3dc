<#
.SYNOPSIS
  Start one ephemeral GitHub Actions runner on a Windows raw_exec host.

.DESCRIPTION
  The manager names the runner archive and its SHA-256 in the runner's
  dispatch meta, from GitHub's own list of current runner downloads; no
  version or checksum is written down here. This script takes the archive
  from the host's cache (one file per checksum) or downloads it, verifies
  the SHA-256 of its own private copy BEFORE expanding anything, expands it
  into a fresh work dir, runs it with the just-in-time (JIT) config read
  from a file, and removes the work dir when it exits (try/finally). The
  JIT config is a secret: this script never prints it.

  Windows PowerShell 5.1 and PowerShell 7 both run it:
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File run-runner.ps1

  Environment (each also a parameter):
    RUNNER_URL        default: $env:NOMAD_META_runner_url
    RUNNER_SHA256     default: $env:NOMAD_META_runner_sha256
    JIT_CONFIG_FILE   default: $env:NOMAD_SECRETS_DIR\jit
    RUNNER_CACHE_DIR  default: $env:ProgramData\buildfleet-runner
    NOMAD_TASK_DIR    the work dir is created under it (else %TEMP%)
#>
[CmdletBinding()]
param(
    [string]$RunnerUrl = $(if ($env:RUNNER_URL) { $env:RUNNER_URL } else { "$env:NOMAD_META_runner_url" }),
    [string]$RunnerSha256 = $(if ($env:RUNNER_SHA256) { $env:RUNNER_SHA256 } else { "$env:NOMAD_META_runner_sha256" }),
    [string]$JitConfigFile = $(if ($env:JIT_CONFIG_FILE) { $env:JIT_CONFIG_FILE } else { Join-Path "$env:NOMAD_SECRETS_DIR" 'jit' }),
    [string]$CacheDir = $(if ($env:RUNNER_CACHE_DIR) { $env:RUNNER_CACHE_DIR } else { Join-Path "$env:ProgramData" 'buildfleet-runner' })
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function Fail([string]$Message) {
    [Console]::Error.WriteLine("run-runner: $Message")
    exit 1
}

function Log([string]$Message) {
    [Console]::Error.WriteLine("run-runner: $Message")
}

if (-not $RunnerUrl) {
    Fail "no runner archive named (RUNNER_URL, or the dispatch meta runner_url the manager sets from GitHub's runner downloads)"
}
if ($RunnerSha256 -notmatch '^[0-9a-fA-F]{64}$') {
    Fail "no SHA-256 for $RunnerUrl (RUNNER_SHA256 or meta runner_sha256); refusing to run an unverified runner"
}
$want = $RunnerSha256.ToUpperInvariant()

if (-not (Test-Path -LiteralPath $JitConfigFile -PathType Leaf) -or (Get-Item -LiteralPath $JitConfigFile).Length -eq 0) {
    Fail "no JIT config at $JitConfigFile (set JIT_CONFIG_FILE)"
}

function Test-Verified([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return $false }
    return (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash -eq $want
}

# Get-RunnerArchive: $Dest becomes a verified private copy of the archive,
# from the cache when it holds a good one, else downloaded (then cached
# under its checksum). The copy is what is verified and expanded.
function Get-RunnerArchive([string]$Dest) {
    $cached = Join-Path $CacheDir $want.ToLowerInvariant()
    if (Test-Path -LiteralPath $cached -PathType Leaf) {
        Copy-Item -LiteralPath $cached -Destination $Dest -Force
        if (Test-Verified $Dest) {
            Log "runner archive $($want.ToLowerInvariant()) from the host's cache"
            return
        }
        Remove-Item -LiteralPath $Dest -Force -ErrorAction SilentlyContinue
    }
    Log "downloading $RunnerUrl"
    # Windows PowerShell 5.1 may default to TLS 1.0.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    try {
        Invoke-WebRequest -UseBasicParsing -Uri $RunnerUrl -OutFile $Dest
    } catch {
        Remove-Item -LiteralPath $Dest -Force -ErrorAction SilentlyContinue
        Fail "download of $RunnerUrl failed: $($_.Exception.Message)"
    }
    if (-not (Test-Verified $Dest)) {
        Remove-Item -LiteralPath $Dest -Force -ErrorAction SilentlyContinue
        Fail "checksum mismatch for $RunnerUrl (want $($want.ToLowerInvariant())); refusing to run it"
    }
    try {
        New-Item -ItemType Directory -Force -Path $CacheDir | Out-Null
        $part = "$cached.part.$PID"
        Copy-Item -LiteralPath $Dest -Destination $part -Force
        Move-Item -LiteralPath $part -Destination $cached -Force
    } catch {
        Log "could not cache the archive: $($_.Exception.Message)"
    }
}

$base = if ($env:NOMAD_TASK_DIR) { $env:NOMAD_TASK_DIR } else { [IO.Path]::GetTempPath() }
$work = Join-Path $base ('actions-runner.' + [guid]::NewGuid().ToString('N'))
$code = 1
try {
    New-Item -ItemType Directory -Path $work | Out-Null
    $archive = Join-Path $work 'runner.zip'
    Get-RunnerArchive $archive
    $runnerDir = Join-Path $work 'runner'
    Expand-Archive -LiteralPath $archive -DestinationPath $runnerDir
    Remove-Item -LiteralPath $archive -Force
    $run = Join-Path $runnerDir 'run.cmd'
    if (-not (Test-Path -LiteralPath $run -PathType Leaf)) { Fail "$RunnerUrl has no run.cmd" }
    Log "starting runner $env:NOMAD_META_runner_version in $work"
    # The config goes from the file to the runner's argument list only.
    # Nomad stops a Windows task by ending its job object, which ends the
    # runner with it; a stopped PowerShell still runs the finally block.
    Push-Location -LiteralPath $runnerDir
    try {
        & $run --jitconfig ((Get-Content -LiteralPath $JitConfigFile -Raw).Trim())
        $code = $LASTEXITCODE
    } finally {
        Pop-Location
    }
    Log "runner exited with status $code"
} finally {
    Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
}
exit $code
