using BlkTapCtrl.Protocol.Control;

namespace BlkTapCtrl.Worker.Control;

/// <summary>Sends one control record to the supervisor.</summary>
public interface IControlSender
{
    void Send(in ControlMessage message);
}
