-- Argo CD health check for the azure-vm-operator kinds (group compute.azvm.io): reads the kstatus conditions
-- (Ready, Reconciling, Stalled, each with observedGeneration) and status.observedGeneration the operator writes.
--
--   Suspended    spec.reconcilePolicy Pause; or Ready and declared stopped (VirtualMachine status.powerState,
--                ScaleSet status.printableStatus or every instance: Deallocated or Stopped)
--   Progressing  no status yet; being deleted; the current generation not observed yet; Reconciling=True;
--                Ready=False with a reason that clears up by itself (an operation in flight, a transient ARM error)
--   Degraded     Stalled=True; Ready=False with any other reason (only a change of spec, quota or permissions helps)
--   Healthy      Ready=True for the current generation
--
-- Argo CD runs this under gopher-lua (Lua 5.1) with only the base, table, package and a "safe" os library:
-- no string or math library, so no string methods here. One script serves every kind; the copies in
-- compute.azvm.io/<Kind>/health.lua are written by gitops/argocd/generate.py: edit gitops/argocd/health.lua.

-- Ready=False reasons that clear up without a change of spec: what the operator is doing (Creating, Updating,
-- Deleting, Scaling, RollingOut, InProgress, RetryingAfterError), Azure provisioning states, and the ARM error
-- codes the operator classifies as transient (operator/azure_vm_operator/azure/errors.py: TRANSIENT_CODES).
local transient = {
  Creating = true, Updating = true, Deleting = true, Migrating = true, InProgress = true, Reconciling = true,
  Scaling = true, RollingOut = true, RetryingAfterError = true, Retrying = true, ProvisioningFailed = true,
  AllocationFailed = true, OverconstrainedAllocationRequest = true, OverconstrainedZonalAllocationRequest = true,
  ZonalAllocationFailed = true, OperationNotAllowed = true, AnotherOperationInProgress = true, Conflict = true,
  RetryableError = true, TooManyRequests = true, InternalServerError = true, InternalExecutionError = true,
  ServiceUnavailable = true, GatewayTimeout = true, NetworkingInternalOperationError = true,
  ResourceGroupBeingDeleted = true, OperationPreempted = true, InUseSubnetCannotBeDeleted = true,
  NicInUse = true, PublicIPAddressInUse = true, WaitingForSourceVM = true,
}

-- Power states in which a machine is intentionally not running.
local stopped = { Deallocated = true, Stopped = true }

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function explain(c)
  local reason = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if reason == "" then
      return c.message
    end
    return reason .. ": " .. c.message
  end
  return reason
end

-- The power state when every machine of the resource is declared and found stopped, else nil.
local function stopped_power(status)
  if status.powerState ~= nil then -- VirtualMachine
    if stopped[status.powerState] then
      return status.powerState
    end
    return nil
  end
  if status.printableStatus ~= nil and stopped[status.printableStatus] then -- ScaleSet
    return status.printableStatus
  end
  if status.instances ~= nil and #status.instances > 0 then -- ScaleSet under reconcilePolicy Observe
    local first = status.instances[1].powerState
    if first == nil or not stopped[first] then
      return nil
    end
    for _, instance in ipairs(status.instances) do
      if instance.powerState ~= first then
        return nil
      end
    end
    return first
  end
  return nil
end

local function assess(obj)
  local spec = obj.spec or {}
  local meta = obj.metadata or {}
  local status = obj.status
  if spec.reconcilePolicy == "Pause" then
    return "Suspended", "reconcilePolicy is Pause: the operator does not touch Azure"
  end
  if meta.deletionTimestamp ~= nil then
    return "Progressing", "Deleting the Azure resources"
  end
  if status == nil or status.conditions == nil then
    return "Progressing", "Waiting for the operator to report status"
  end
  local generation = meta.generation
  if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
    return "Progressing", "Waiting for the operator to observe generation " .. generation
  end
  local ready = condition(status, "Ready")
  if generation ~= nil and ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    return "Progressing", "Waiting for the operator to observe generation " .. generation
  end
  local stalled = condition(status, "Stalled")
  if stalled ~= nil and stalled.status == "True" then
    return "Degraded", explain(stalled)
  end
  local reconciling = condition(status, "Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    if ready ~= nil and ready.status ~= "True" then
      return "Progressing", explain(ready)
    end
    return "Progressing", explain(reconciling)
  end
  if ready ~= nil and ready.status == "True" then
    local power = stopped_power(status)
    if power ~= nil then
      return "Suspended", power .. " as declared"
    end
    return "Healthy", explain(ready)
  end
  if ready == nil then
    return "Progressing", "Waiting for the Ready condition"
  end
  if transient[ready.reason or ""] then
    return "Progressing", explain(ready)
  end
  return "Degraded", explain(ready)
end

local hs = {}
hs.status, hs.message = assess(obj)
return hs
